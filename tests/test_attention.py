"""CLS attention by object size: patch coverage from masks, shares of planted attention maps, attention read from a
real open_clip ViT (set by hand to attend uniformly, and recomputed from its weights), and the rule's per-object rows
on scenes our renderer draws, through to the table and figure."""
import numpy as np
import open_clip
import pandas as pd
import pytest
import torch

from workflow_scripts.analyses.attention import (
    attention_rows,
    chosen_layers,
    cls_attention,
    object_shares,
    patch_coverage,
    vit_blocks,
)
from workflow_scripts.models.preprocessing import kept_region


@pytest.fixture(scope="module")
def vit():
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32")
    return model.eval(), preprocess


def uniform_copy(model, layers):
    """A copy of `model` whose query projections in `layers` are zero: every token gets the same score, so the
    class token attends to the class token and the 49 patches alike, 1/50 each."""
    import copy

    uniform = copy.deepcopy(model)
    blocks = vit_blocks(uniform)
    with torch.no_grad():
        for layer in layers:
            attn = blocks[layer].attn
            d = attn.embed_dim
            attn.in_proj_weight[:d] = 0
            attn.in_proj_bias[:d] = 0
    return uniform


def test_patch_coverage_splits_the_kept_region_into_patches():
    masks = np.zeros((2, 4, 6), bool)
    masks[0, :, :3] = True  # object 1: the left half
    masks[1, :2, 3:] = True  # object 2: the top right quarter
    coverage = patch_coverage(masks, (0, 0, 6, 4), (2, 2))
    assert coverage == pytest.approx(np.array([[1, 0, 1, 0], [0, 1, 0, 0]]))
    # A 3x3 grid over the same image: patch edges fall inside pixels, whose area is shared out.
    coverage = patch_coverage(masks, (0, 0, 6, 4), (3, 3))
    assert coverage[0].reshape(3, 3)[:, 1] == pytest.approx([0.5] * 3)
    assert coverage[1].reshape(3, 3)[1] == pytest.approx([0, 0.25, 0.5])


def test_coverage_follows_the_models_resize_and_centre_crop(vit):
    """A 320x240 render reaches ViT-B-32 as its central 240-pixel square: its left half covers the input's
    columns left of the middle, the middle column of patches half."""
    _, preprocess = vit
    masks = np.zeros((1, 240, 320), bool)
    masks[0, :, :160] = True
    region = kept_region(preprocess, 320, 240)
    grid = patch_coverage(masks, region, (7, 7))[0].reshape(7, 7)
    assert grid[:, :3] == pytest.approx(np.ones((7, 3)))
    assert grid[:, 4:] == pytest.approx(np.zeros((7, 3)))
    assert grid[:, 3] == pytest.approx([0.5] * 7, abs=0.01)


def test_shares_of_planted_attention():
    coverage = np.array([[1.0, 1.0, 0.5, 0.0], [0.0, 0.0, 0.5, 0.0], [0.0, 0.0, 0.0, 0.0]])
    uniform = object_shares(np.full(4, 0.25), coverage)
    assert uniform["attention_share"] == pytest.approx([0.625, 0.125, 0])
    assert uniform["area_share"] == pytest.approx([0.625, 0.125, 0])
    assert uniform["attention_per_area"][:2] == pytest.approx([1, 1]) and np.isnan(uniform["attention_per_area"][2])
    on_patch_3 = object_shares(np.array([0.0, 0.0, 1.0, 0.0]), coverage)  # all attention on the shared patch
    assert on_patch_3["attention_share"] == pytest.approx([0.5, 0.5, 0])
    assert on_patch_3["attention_per_area"][:2] == pytest.approx([0.8, 4.0])


def test_attention_set_by_hand_is_uniform_over_the_patches(vit):
    model, _ = vit
    layers = chosen_layers(12, 2)
    assert layers == [10, 11]
    images = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        attention = cls_attention(uniform_copy(model, layers), images, layers)
    assert attention.shape == (2, 49)
    assert attention == pytest.approx(np.full((2, 49), 1 / 49), rel=1e-5)


def test_attention_read_from_the_model_is_its_softmax_and_changes_no_embedding(vit):
    """The hooks' weights equal softmax(q k^T / sqrt(d)) recomputed from the last block's input and in_proj
    weights, per head, and the model's embedding is the same with and without them."""
    model, _ = vit
    block = vit_blocks(model)[-1]
    captured = {}
    handle = block.ln_1.register_forward_hook(lambda module, args, output: captured.update(x=output))
    images = torch.randn(2, 3, 224, 224)
    with torch.inference_mode():
        plain = model.encode_image(images)
        attention = cls_attention(model, images, [11])
        again = model.encode_image(images)
        handle.remove()
        attn = block.attn
        q, k, _ = torch.nn.functional.linear(captured["x"], attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
        heads, d = attn.num_heads, attn.head_dim
        q = q[:, :1].reshape(2, 1, heads, d).transpose(1, 2)
        k = k.reshape(2, -1, heads, d).transpose(1, 2)
        weights = torch.softmax(q @ k.transpose(-1, -2) / d ** 0.5, dim=-1).mean(dim=1)[:, 0, 1:]
    expected = (weights / weights.sum(dim=1, keepdim=True)).numpy()
    assert attention == pytest.approx(expected, abs=1e-6)
    assert torch.equal(plain, again)


def test_a_resnet_tower_is_refused_by_name():
    model = open_clip.create_model("RN50")
    with pytest.raises(ValueError, match="ModifiedResNet, not an open_clip VisionTransformer"):
        vit_blocks(model)
    with pytest.raises(ValueError, match="last_layers is 13; this ViT has 12 blocks"):
        chosen_layers(12, 13)


@pytest.fixture(scope="module")
def rendered_scenes(tmp_path_factory):
    """Four one-large SIMCO scenes rendered by our renderer at 64x64, with their object-index pass."""
    pytest.importorskip("bpy")
    from workflow_scripts.datasets.simco import generate_simco_scenes
    from workflow_scripts.render.shard import render_scenes

    spec = {"objects_per_scene": [2, 3], "scenes_per_count": 2, "shards": 1, "layout": "one_large",
            "splits": {"test": 1.0}}
    rows = generate_simco_scenes("attn", spec, 64, 64, seed=3).to_pylist()
    out = tmp_path_factory.mktemp("attention") / "images"
    render_scenes(rows, out, {"samples": 4, "denoise": False, "device": "CPU", "gpu_backend": "CUDA"}, threads=2)
    return rows, [out / f"{row['item_id']}.png" for row in rows]


def test_uniform_attention_on_renders_gives_each_object_its_pixel_share(vit, rendered_scenes):
    """Known answer: a square render is kept whole, so under uniform attention each object's attention share and
    area share equal its mask's pixels over the image's, and its attention per unit area is 1."""
    model, preprocess = vit
    items, paths = rendered_scenes
    rows, layers = attention_rows(uniform_copy(model, [8, 9, 10, 11]), preprocess, items, paths, "cpu", 4,
                                  batch_size=3)
    assert layers == "blocks 9-12 of 12"
    assert len(rows) == sum(item["n_objects"] for item in items)
    for row in rows:
        assert row["pixels"] > 0
        assert row["area_share"] == pytest.approx(row["pixels"] / 64 ** 2, rel=1e-9)
        assert row["attention_share"] == pytest.approx(row["area_share"], rel=1e-4)
        assert row["attention_per_area"] == pytest.approx(1, rel=1e-4)
    for item in items:
        sizes = {row["size"]: row["pixels"] for row in rows if row["item_id"] == item["item_id"]
                 and row["size"] == "large"}
        smalls = [row["pixels"] for row in rows if row["item_id"] == item["item_id"] and row["size"] == "small"]
        assert sizes["large"] > max(smalls)  # the large object covers more pixels than any small one


def test_table_and_figure_from_planted_rows(tmp_path):
    """Two-object images whose large object takes 0.6 of the attention and a small one 0.2: the table's means and
    its share of images where the large object draws the most (all of them), and the figure draws."""
    from workflow_scripts.summary.figures import draw
    from workflow_scripts.summary.tables import attention_markdown, attention_table

    rows = []
    for i in range(5):
        for size, attention, area in (("large", 0.6, 0.3), ("small", 0.2, 0.05 + 0.01 * i)):
            rows.append({"dataset": "d", "model_id": "m", "weights": "random initialisation, torch seed 0",
                         "precision": "fp32", "layers": "blocks 1-1 of 1", "item_id": f"i{i}", "n_objects": 2,
                         "n_large": 1, "size": size, "attention_share": attention, "area_share": area,
                         "attention_per_area": attention / area})
    rows.append({**rows[0], "item_id": "mixed", "n_large": 2})  # not a one-large scene: left out
    table = attention_table(pd.DataFrame(rows))
    share = table[(table["measure"] == "attention share") & (table["n_objects"] == "2")].set_index("object")
    assert share.loc["large", "value"] == pytest.approx(0.6) and share.loc["a small one", "value"] == pytest.approx(0.2)
    assert share.loc["large", "n_images"] == 5
    most = table[table["measure"].str.startswith("images where") & (table["n_objects"] == "all")]
    assert most["value"].tolist() == [1.0, 0.0] and most["chance"].tolist() == [0.5, 0.5]  # per area, the small wins
    assert most["value_low95"].iloc[0] == pytest.approx(0.566, abs=1e-3)  # Wilson, 5 of 5
    assert "| 1.000 [0.566, 1.000] | 5 | 0.500 |" in attention_markdown(table)
    draw("attention_by_size", {"attention": table}, tmp_path / "f.png", tmp_path / "f.pdf")
    assert (tmp_path / "f.png").stat().st_size > 0
