"""Embeddings equal open_clip's own encode_image/encode_text; weights load from tags, paths or nothing."""
import time
from types import SimpleNamespace

import huggingface_hub.constants
import numpy as np
import pyarrow as pa
import pytest
import torch
from PIL import Image

from workflow_scripts.common.files import LOCK_NAME
from workflow_scripts.models import embed, hub, loading
from workflow_scripts.common.parquet import embedding_array, embedding_matrix, read_provenance, write_table

MODEL = "ViT-B-32"


@pytest.fixture(scope="module")
def random_model():
    return loading.load_model(MODEL, "none", seed=0)


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pngs")
    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate([(64, 48), (224, 224), (100, 130), (32, 32), (80, 60)]):
        path = folder / f"{i}.png"
        Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def one_by_one_images(model, preprocess, paths):
    with torch.no_grad():
        return np.concatenate(
            [model.encode_image(preprocess(Image.open(p).convert("RGB")).unsqueeze(0)).numpy() for p in paths]
        )


def test_image_rows_equal_encode_image(random_model, pngs):
    model, preprocess, _, _ = random_model
    batched = embed.embed_images(model, preprocess, pngs, "cpu", batch_size=2, num_workers=2, precision="fp32")
    assert batched.dtype == np.float32 and batched.shape == (5, 512)
    np.testing.assert_allclose(batched, one_by_one_images(model, preprocess, pngs), atol=1e-4, rtol=1e-4)


def test_batches_decoded_in_parts_per_worker_keep_their_images_and_order(random_model, pngs):
    model, preprocess, _, _ = random_model
    paths = [pngs[i] for i in (4, 1, 3, 0, 2)]
    forwards = []  # the batch sizes the model sees: whole batches, not the workers' parts

    def encode_image(batch):
        forwards.append(len(batch))
        return model.encode_image(batch)

    # Batches of 3 with 2 workers: parts of 2 and 1 images, from alternating workers
    vectors = embed.embed_images(SimpleNamespace(encode_image=encode_image), preprocess, paths, "cpu",
                                 batch_size=3, num_workers=2, precision="fp32")
    assert forwards == [3, 2]
    np.testing.assert_allclose(vectors, one_by_one_images(model, preprocess, paths), atol=1e-4, rtol=1e-4)


def test_text_rows_equal_encode_text_in_input_order(random_model):
    model, _, tokenizer, _ = random_model
    texts = ["red cube and blue sphere", "blue cube and red sphere", "red cube and blue sphere", "gray cylinder"]
    batched = embed.embed_texts(model, tokenizer, texts, "cpu", batch_size=2, precision="fp32")
    with torch.no_grad():
        expected = np.concatenate([model.encode_text(tokenizer([t])).numpy() for t in texts])
    np.testing.assert_allclose(batched, expected, atol=1e-4, rtol=1e-4)
    assert not np.allclose(batched[0], batched[1])


CAPTIONS = ["red cube and blue sphere", "gray cylinder", "a", "blue cube and red sphere and green cylinder",
            "This vibrant display features a stunning cube with its radiant glow, a mesmerizing sphere with bold "
            "contours, an enchanting cylinder that fits perfectly with its graceful form."]  # 2 to 40 tokens


def configured_text_towers():
    """(label, model, tokenizer) of every text tower the shipped configs embed with: config.yaml's open_clip
    architectures and the CLIP that the demo and the data-order experiment train, randomly initialised."""
    import open_clip
    import yaml

    from conftest import REPO
    from workflow_scripts.models.training import new_clip

    towers = []
    for model in yaml.safe_load((REPO / "config.yaml").read_text())["models"]:
        towers.append((model["name"], model["name"]))
    for config in ("demo.yaml", "data_order.yaml"):
        for run, settings in yaml.safe_load((REPO / "configs" / config).read_text())["clip_training"].items():
            if "architecture" in settings:
                towers.append((f"{config}: {run}", settings["architecture"]))
    for label, source in dict(towers).items():
        if isinstance(source, str):
            torch.manual_seed(0)
            yield label, open_clip.create_model(source).eval(), open_clip.get_tokenizer(source)
        else:
            model, _, tokenizer = new_clip(source, seed=0)
            yield label, model.eval(), tokenizer


def test_trimmed_context_gives_the_full_context_s_vectors_for_every_configured_tower():
    labels = []
    for label, model, tokenizer in configured_text_towers():
        assert embed.trimmable_tower(model) is not None, label  # the trimmed path is the one taken
        trimmed = embed.embed_texts(model, tokenizer, CAPTIONS, "cpu", batch_size=2, precision="fp32")
        full = embed.embed_texts(model, tokenizer, CAPTIONS, "cpu", batch_size=2, precision="fp32", trim=False)
        np.testing.assert_allclose(trimmed, full, rtol=1e-4, atol=1e-5 * np.abs(full).max(), err_msg=label)
        labels.append(label)
    assert {"ViT-B-32", "ViT-L-14", "demo.yaml: scenes_clip"} <= set(labels)


def test_towers_where_trimming_is_not_exact_run_the_full_context(random_model, monkeypatch, caplog):
    model, _, tokenizer, _ = random_model
    with torch.no_grad():
        expected = model.encode_text(tokenizer(CAPTIONS)).numpy()
    monkeypatch.setattr(model, "text_pool_type", "last")  # pooled at the last of all 77 positions
    assert embed.trimmable_tower(model) is None
    with torch.no_grad():
        last = model.encode_text(tokenizer(CAPTIONS)).numpy()
    np.testing.assert_allclose(embed.embed_texts(model, tokenizer, CAPTIONS, "cpu", 2, "fp32"), last, rtol=1e-4,
                               atol=1e-5)
    monkeypatch.setattr(model, "text_pool_type", "argmax")
    monkeypatch.setattr(embed, "encode_trimmed", lambda tower, tokens: model.encode_text(tokens) + 1.0)  # a wrong one
    guarded = embed.embed_texts(model, tokenizer, CAPTIONS, "cpu", 2, "fp32")
    np.testing.assert_allclose(guarded, expected, rtol=1e-4, atol=1e-5)
    assert "embedding with the full context" in caplog.text


def test_random_weights_are_seeded_and_labelled(random_model, pngs):
    model, preprocess, _, provenance = random_model
    assert {k: provenance[k] for k in ("model", "pretrained", "weights", "activation")} == {
        "model": MODEL, "pretrained": "none", "weights": "random initialisation, torch seed 0", "activation": "GELU"}
    assert provenance["preprocessing"].startswith("Resize(size=224, interpolation=bicubic")
    assert "Normalize(mean=(0.48145466," in provenance["preprocessing"]
    same = loading.load_model(MODEL, "none", seed=0)[0]
    other = loading.load_model(MODEL, "none", seed=1)[0]
    first = one_by_one_images(model, preprocess, pngs[:1])
    np.testing.assert_array_equal(one_by_one_images(same, preprocess, pngs[:1]), first)
    assert not np.allclose(one_by_one_images(other, preprocess, pngs[:1]), first)


def test_local_checkpoint_gives_the_saved_model(random_model, pngs, tmp_path, caplog):
    model, preprocess, _, _ = random_model
    checkpoint = tmp_path / "my_clip.pt"
    torch.save(model.state_dict(), checkpoint)
    with caplog.at_level("WARNING", logger="clip_binding"):
        loaded, _, _, provenance = loading.load_model(MODEL, str(checkpoint), seed=7)
    # ViT-B-32 runs GELU and open_clip registers ViT-B-32-quickgelu: a checkpoint loaded so is warned about
    assert f"checkpoint {checkpoint} is loaded as ViT-B-32, which runs GELU" in caplog.text
    assert "name the architecture ViT-B-32-quickgelu instead" in caplog.text
    assert provenance["activation"] == "GELU"
    assert provenance["pretrained"] == str(checkpoint)
    assert provenance["weights"] == f"local checkpoint sha256 {loading.sha256_of(checkpoint)}"
    np.testing.assert_allclose(
        one_by_one_images(loaded, preprocess, pngs[:2]), one_by_one_images(model, preprocess, pngs[:2]), atol=1e-6
    )


def test_the_activation_guard_speaks_only_where_a_quickgelu_twin_could_be_meant():
    import open_clip

    quick = open_clip.create_model("ViT-B-32-quickgelu")
    assert loading.activation_of(quick) == "QuickGELU"
    assert loading.activation_warning("ViT-B-32-quickgelu", "/data/negclip.pt", "QuickGELU") is None
    assert loading.activation_warning("ViT-B-32", "openai", "GELU") is None  # a tag: open_clip sets it right
    assert loading.activation_warning("ViT-B-32", "none", "GELU") is None
    assert loading.activation_warning("ViT-S-16", "/data/s16.pt", "GELU") is None  # no QuickGELU twin registered
    assert "ViT-B-16-quickgelu" in loading.activation_warning("ViT-B-16", "/data/ft.safetensors", "GELU")


@pytest.mark.parametrize(
    "name, pretrained, error, words",
    [
        ("ViT-B-99", "none", ValueError, "'ViT-B-99' is not an open_clip architecture"),
        (MODEL, "no_such_tag", ValueError, "'no_such_tag' is not an open_clip tag of 'ViT-B-32'; its tags are ["),
        (MODEL, "/nowhere/clip.pt", FileNotFoundError, "checkpoint for model 'ViT-B-32' not found: /nowhere/clip.pt"),
    ],
)
def test_unusable_weights_are_named(name, pretrained, error, words):
    with pytest.raises(error) as raised:
        loading.describe_weights(name, pretrained, seed=0)
    assert words in str(raised.value)


def test_uncached_tag_offline_fails_at_once_with_both_ways_out(monkeypatch, tmp_path):
    monkeypatch.setattr(hub, "hub_reachable", lambda *a, **k: False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    started = time.monotonic()
    with pytest.raises(RuntimeError) as raised:
        loading.load_model(MODEL, "openai")
    message = str(raised.value)
    assert "ViT-B-32/openai are not in the local cache" in message
    assert "local checkpoint path" in message and "create_model_and_transforms" in message
    print(f"failed after {time.monotonic() - started:.1f} s")


def test_text_items_join_back_to_items():
    scenes = pa.table({
        "item_id": ["s0", "s1"],
        "caption": ["red cube and blue sphere", "gray cube and cyan cylinder"],
        "negative_captions": [["blue cube and red sphere"], ["cyan cube and gray cylinder"]],
    })
    items = embed.text_items(scenes)
    assert items == {
        "item_id": ["s0", "s0", "s1", "s1"],
        "role": ["caption", "negative", "caption", "negative"],
        "negative_index": [None, 0, None, 0],
        "text": ["red cube and blue sphere", "blue cube and red sphere",
                 "gray cube and cyan cylinder", "cyan cube and gray cylinder"],
    }


def test_embedding_column_round_trip_with_provenance(tmp_path):
    vectors = np.arange(12, dtype=np.float32).reshape(3, 4) / 7
    path = tmp_path / "e.parquet"
    write_table(pa.table({"id": [1, 2, 3], "embedding": embedding_array(vectors)}), path, {"model": "m", "dim": 4})
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    assert table.schema.field("embedding").type == pa.list_(pa.float32(), 4)
    np.testing.assert_array_equal(embedding_matrix(table.column("embedding")), vectors)
    assert read_provenance(path) == {"model": "m", "dim": 4}
    assert {p.name for p in tmp_path.iterdir()} == {"e.parquet", LOCK_NAME}  # no partial, no claim left


def test_precision_recorded_is_the_one_computed_in():
    from workflow_scripts.common.parquet import joint_precision

    assert embed.precision_used("cuda:0", "fp16") == "fp16" and embed.precision_used("cuda", "bf16") == "bf16"
    assert embed.precision_used("cpu", "fp16") == "fp32"
    assert joint_precision("fp16", "fp16") == "fp16"
    assert joint_precision("fp16", "fp32") == "images fp16, texts fp32"
