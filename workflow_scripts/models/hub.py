"""Whether this process may download from the Hugging Face hub, and a switch that keeps huggingface_hub to its
cache: shared by CLIP's loading (loading.py) and the transformers models' (hf_models.py)."""
import os
import socket
from contextlib import contextmanager

HUB_HOST = "huggingface.co"


def hub_reachable(host: str = HUB_HOST, timeout: float = 3.0) -> bool:
    """Whether the hub answers within `timeout`; behind a configured HTTPS proxy, leave it to the download."""
    if os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy"):
        return True
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


def hub_offline_reason() -> str | None:
    """Why this process must read the Hugging Face cache only, or None where it may download."""
    import huggingface_hub.constants as hub

    if hub.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    if not hub_reachable():
        return f"{HUB_HOST} cannot be reached"
    return None


@contextmanager
def hub_offline(offline: bool = True):
    """Within the block huggingface_hub reads its cache only and makes no request at all (when `offline`);
    the previous setting comes back afterwards."""
    import huggingface_hub.constants as hub

    before = hub.HF_HUB_OFFLINE
    hub.HF_HUB_OFFLINE = before or offline
    try:
        yield
    finally:
        hub.HF_HUB_OFFLINE = before
