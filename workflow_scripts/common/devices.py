"""Which torch device a configured 'auto' / 'cpu' / 'cuda[:N]' means here."""
import torch


def resolve_device(requested: str) -> str:
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} is configured, but torch sees no CUDA device here")
    return requested
