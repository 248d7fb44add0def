"""Linear probes: targets, top-k set accuracy, both solvers on known-answer synthetic embeddings, a
shuffled-label control, multi-object soft targets, folded standardisation, probe-weight cosine."""
import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import PROBES
from synthetic import synthetic_embedded
from workflow_scripts.analyses.embedded import Embedded
from workflow_scripts.analyses.probes import (
    UNIQUE_TOLERANCE,
    chance_accuracy,
    fit_unique_probe,
    probe_targets,
    probe_weight_cosine,
    run_probes,
    sklearn_c_grid,
    topk_set_accuracy,
    train_probe_sklearn,
    train_probe_sgd,
    training_probe_sets,
    unique_probe_weights,
    weighted_hard_labels,
)
from workflow_scripts.datasets.clevr import SHAPES, VOCABULARY, generate_scenes

CLASSES = list(VOCABULARY.attributes)


def spec(counts, per_count):
    return {"sampling": "distinct", "objects_per_scene": list(counts), "scenes_per_count": per_count,
            "negatives_per_scene": 1,
            "shards": 1, "splits": {"train": 0.8, "val": 0.1, "test": 0.1}}


def scene(*pairs, split="train"):
    return {"objects": [{"object": s, "attribute": c} for c, s in pairs], "caption": " and ".join(f"{c} {s}" for c, s in pairs),
            "split": split, "n_objects": len(pairs)}


def one_hot(*colors):
    row = np.zeros(len(CLASSES), dtype=np.float32)
    for c in colors:
        row[CLASSES.index(c)] += 1 / len(colors)
    return row


@pytest.fixture(scope="module")
def known():
    return synthetic_embedded(generate_scenes("syn", spec([2], 1500), 320, 240, seed=0).to_pylist())


@pytest.fixture(scope="module")
def results(known):
    # SGD in the authors' full setting (lr 0.1, batch 32, 100 epochs): about a second per image probe.
    return {(modality, solver): run_probes(known, modality, solver, **PROBES[solver])
            for modality in ("image", "text") for solver in ("sklearn", "sgd")}


def test_probe_targets_two_objects():
    scenes = [scene(("red", "cube"), ("blue", "sphere")), scene(("green", "cylinder"), ("red", "sphere"))]
    mask, targets = probe_targets(scenes, "cube", CLASSES)
    assert mask.tolist() == [True, False]
    np.testing.assert_array_equal(targets, [one_hot("red"), np.zeros(8)])
    mask, targets = probe_targets(scenes, "sphere", CLASSES)
    assert mask.tolist() == [True, True]
    np.testing.assert_array_equal(targets, [one_hot("blue"), one_hot("red")])


def test_probe_targets_soft_in_multi_object_scenes():
    scenes = [scene(("red", "cube"), ("green", "sphere"), ("blue", "cube")),
              scene(("red", "cube"), ("blue", "cube"), ("gray", "cube"), ("cyan", "sphere"))]
    mask, targets = probe_targets(scenes, "cube", CLASSES)
    assert mask.tolist() == [True, True]
    assert targets[0, CLASSES.index("red")] == targets[0, CLASSES.index("blue")] == 0.5
    np.testing.assert_allclose(targets, [one_hot("red", "blue"), one_hot("red", "blue", "gray")])
    np.testing.assert_allclose(targets.sum(axis=1), 1)
    mask, targets = probe_targets(scenes, "cylinder", CLASSES)
    assert not mask.any() and not targets.any()


def test_topk_set_accuracy_and_chance():
    red, blue, green = (CLASSES.index(c) for c in ("red", "blue", "green"))
    targets = np.stack([one_hot("red"), one_hot("red"), one_hot("red", "blue"), one_hot("red", "blue")])
    logits = np.zeros((4, 8))
    logits[0, red] = 1  # k = 1, right
    logits[1, green] = 1  # k = 1, wrong
    logits[2, [red, blue]] = [2, 1]  # k = 2, both colours on top: right
    logits[3, [red, green, blue]] = [3, 2, 1]  # k = 2, top two are red and green: wrong (no ties)
    assert topk_set_accuracy(logits, targets) == 0.5
    assert topk_set_accuracy(logits[[0, 2]], targets[[0, 2]]) == 1.0
    assert topk_set_accuracy(logits[[1, 3]], targets[[1, 3]]) == 0.0
    tie = np.zeros((1, 8))  # all logits equal: "the highest" is undefined, counted wrong
    assert topk_set_accuracy(tie, targets[:1]) == 0.0
    assert chance_accuracy(targets) == pytest.approx((1 / 8 + 1 / 8 + 1 / 28 + 1 / 28) / 4)
    assert chance_accuracy(targets[:2]) == pytest.approx(0.125)
    with pytest.raises(ValueError):
        topk_set_accuracy(logits[:1], np.zeros((1, 8)))


@pytest.mark.parametrize("modality", ["image", "text"])
@pytest.mark.parametrize("solver", ["sklearn", "sgd"])
def test_known_answer(results, modality, solver):
    """The synthetic embeddings carry each (colour, shape) binding on a direction of its own, so the colour
    of every shape is linearly decodable in both modalities."""
    rows, weights = results[modality, solver]
    selections = ["last_epoch", "best_val"] if solver == "sgd" else ["best_val"]
    assert [(r["n_objects"], r["object"], r["selection"]) for r in rows] == [
        (2, s, selection) for s in SHAPES for selection in selections]
    for row in rows:
        assert row["modality"] == modality and row["solver"] == solver
        assert row["protocol"] == ("authors" if (solver, row["selection"]) == ("sgd", "last_epoch") else "clean")
        assert row["test_accuracy"] >= 0.9, row
        assert row["chance"] == pytest.approx(0.125)
        assert row["chosen"].startswith("C " if solver == "sklearn" else "epoch ")
        if row["selection"] == "last_epoch":
            assert row["chosen"] == f"epoch {PROBES['sgd']['epochs']}"
        assert min(row["n_train"], row["n_val"], row["n_test"]) > 0
    assert set(weights) == {(2, s) for s in SHAPES}
    assert all(w.shape == (8, 96) for w in weights.values())


def test_text_probes_see_each_caption_once(known, results):
    rows, _ = results["text", "sklearn"]
    image_rows, _ = results["image", "sklearn"]
    for row, image_row in zip(rows, image_rows):
        for name in ("train", "val", "test"):
            captions = {s["caption"] for s in known.items
                        if s["split"] == name and any(o["object"] == row["object"] for o in s["objects"])}
            assert row[f"n_{name}"] == len(captions)
        assert row["n_train"] < image_row["n_train"]  # 2-object captions repeat across the 1500 scenes


def test_solvers_agree(results):
    """The scikit-learn probe and the authors' SGD (last epoch) agree within 0.01 in mean test accuracy."""
    for modality in ("image", "text"):
        fast, authors = (np.mean([r["test_accuracy"] for r in results[modality, s][0] if r["selection"] == selection])
                         for s, selection in (("sklearn", "best_val"), ("sgd", "last_epoch")))
        assert abs(fast - authors) <= 0.01, (modality, fast, authors)


@pytest.mark.parametrize("modality", ["image", "text"])
def test_shuffled_embeddings_decode_at_chance(known, modality):
    """Negative control: embeddings permuted relative to their scenes carry no information on the labels."""
    order = np.random.default_rng(0).permutation(len(known.items))
    shuffled = Embedded(known.items, known.image[order], known.caption[order], known.negative, known.weights,
                        known.vocabulary)
    rows, _ = run_probes(shuffled, modality, "sklearn", Cs=(0.1, 1.0))
    assert len(rows) == len(SHAPES)
    for row in rows:
        assert row["test_accuracy"] < 0.35, row


def test_multi_object_soft_targets():
    """4- and 6-object scenes: shapes repeat, targets are colour distributions, accuracy is top-k set match.
    In the synthetic data the presence of each colour on a given shape is an exact linear function of the
    embedding (one binding direction per pair, noise 0.05), so probes decode it: measured test accuracy
    1.0 for every probe (scikit-learn and SGD, both modalities) with chance 0.04-0.09. 0.9 leaves room for about
    five errors in the ~50 test scenes per probe."""
    data = synthetic_embedded(generate_scenes("syn_multi", spec([4, 6], 600), 320, 240, seed=0).to_pylist())
    for modality in ("image", "text"):
        rows, weights = run_probes(data, modality, "sklearn", Cs=(0.1, 1.0))
        assert [(r["n_objects"], r["object"]) for r in rows] == [(n, s) for n in (4, 6) for s in SHAPES]
        assert set(weights) == {(n, s) for n in (4, 6) for s in SHAPES}
        for row in rows:
            assert row["chance"] < 0.125  # some test scenes hold the shape more than once (k >= 2)
            assert row["test_accuracy"] >= 0.9, row


def test_sklearn_weights_act_on_raw_embeddings(known):
    """The weights returned with the standardisation folded in reproduce scikit-learn's own logits on the
    standardised inputs. Columns are rescaled and shifted so that standardising matters."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(1)
    x = known.image * rng.uniform(0.1, 10, known.image.shape[1]) + rng.normal(0, 5, known.image.shape[1])
    mask, targets = probe_targets(known.items, "cube", CLASSES)
    train, val = mask & (known.split == "train"), mask & (known.split == "val")
    fit = train_probe_sklearn(x[train], targets[train], x[val], targets[val], Cs=[0.5])
    scaler = StandardScaler().fit(x[train])
    mean, std = scaler.mean_, scaler.scale_
    own = LogisticRegression(C=0.5, max_iter=1000).fit((x[train] - mean) / std, targets[train].argmax(axis=1))
    logits = own.decision_function((x - mean) / std)
    assert list(own.classes_) == list(range(len(CLASSES)))  # every colour occurs: no class is left out
    np.testing.assert_allclose(fit.logits(x), logits, atol=1e-4 * np.abs(logits).max())
    assert (fit.logits(x).argmax(axis=1) == logits.argmax(axis=1)).all()
    assert fit.chosen == "C 0.5 (1 of 1 fitted)"


def test_sklearn_soft_targets_and_absent_classes():
    """Soft targets become weighted hard labels: a row with target (1/2, 1/2) weighs like two rows of weight 1/2.
    A colour absent from training is never predicted; two colours present give a binary model over all eight."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 6))
    y = np.zeros((200, 8), dtype=np.float32)
    y[np.arange(200), (x[:, 0] > 0).astype(int) * 3] = 1  # colours 0 and 3 only, decided by the first column
    fit = train_probe_sklearn(x[:150], y[:150], x[150:], y[150:], Cs=[1.0])
    assert fit.val_accuracy >= 0.95 and np.isneginf(fit.bias[[1, 2, 4, 5, 6, 7]]).all()
    assert set(fit.logits(x).argmax(axis=1)) == {0, 3}
    soft = np.tile([[0.5, 0.5]], (4, 1))
    rows, labels, weights = weighted_hard_labels(np.array([[1.0, 0], *soft]))
    assert rows.tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4] and labels.tolist() == [0] + [0, 1] * 4
    assert weights.tolist() == [1.0] + [0.5] * 8


def test_sklearn_path_stops_at_perfect_validation():
    """Ties go to the smaller C, so once validation accuracy is 1 no later C can be chosen: the path stops there.
    With labels that no C fits perfectly, every C is fitted."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 6))
    label = (x[:, 0] > 0).astype(int) * 3
    y = np.eye(8, dtype=np.float32)[label]
    fit = train_probe_sklearn(x[:300], y[:300], x[300:], y[300:], Cs=10)
    fitted = int(fit.chosen.split("(")[1].split()[0])
    assert fit.val_accuracy == 1.0 and fitted < 10
    assert fit.chosen == f"C {sklearn_c_grid(10)[fitted - 1]:g} ({fitted} of 10 fitted)"  # the last one fitted
    noisy = np.eye(8, dtype=np.float32)[np.where(rng.random(400) < 0.2, 3 - label, label)]
    fit = train_probe_sklearn(x[:300], noisy[:300], x[300:], noisy[300:], Cs=10)
    assert fit.val_accuracy < 1.0 and fit.chosen.endswith("(10 of 10 fitted)")


def test_sklearn_c_grid_reads_cs_as_logistic_regression_cv_does():
    assert sklearn_c_grid(10) == pytest.approx(np.logspace(-4, 4, 10).tolist())
    assert sklearn_c_grid([10, 0.1]) == [0.1, 10.0]


def test_solvers_are_deterministic(known):
    mask, targets = probe_targets(known.items, "sphere", CLASSES)
    train, val = mask & (known.split == "train"), mask & (known.split == "val")
    arrays = known.image[train], targets[train], known.image[val], targets[val]
    a, b, c = (train_probe_sgd(*arrays, **{**PROBES['sgd'], 'epochs': 2}, seed=seed)["last_epoch"] for seed in (0, 0, 1))
    np.testing.assert_array_equal(a.weight, b.weight)
    assert not np.allclose(a.weight, c.weight)
    d, e = (train_probe_sklearn(*arrays, Cs=(1.0,)) for _ in range(2))
    np.testing.assert_array_equal(d.weight, e.weight)


def test_empty_split_skipped_with_warning(known, caplog):
    no_test_cylinder = np.array([not (s["split"] == "test" and any(o["object"] == "cylinder" for o in s["objects"]))
                                 for s in known.items])
    with caplog.at_level(logging.WARNING):
        rows, weights = run_probes(known.subset(no_test_cylinder), "image", "sklearn", Cs=(1.0,))
    assert [r["object"] for r in rows] == ["cube", "sphere"]
    assert set(weights) == {(2, "cube"), (2, "sphere")}
    assert any("cylinder" in r.getMessage() and r.levelno == logging.WARNING for r in caplog.records)


def test_probe_weight_cosine():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((8, 16))
    orthogonal = np.zeros((8, 16))
    for i in range(8):
        v = rng.standard_normal(16)
        orthogonal[i] = v - (v @ w[i]) / (w[i] @ w[i]) * w[i]
    assert probe_weight_cosine({(2, "cube"): w}, {(2, "cube"): 3 * w}) == pytest.approx(1)
    assert probe_weight_cosine({(2, "cube"): w}, {(2, "cube"): orthogonal}) == pytest.approx(0, abs=1e-12)
    assert probe_weight_cosine({(2, "cube"): w}, {(2, "cube"): -w}) == pytest.approx(-1)
    # mean over the shared keys only: one identical probe, one orthogonal, one image-only
    image = {(2, "cube"): w, (2, "sphere"): w, (4, "cube"): w}
    text = {(2, "cube"): w, (2, "sphere"): orthogonal}
    assert probe_weight_cosine(image, text) == pytest.approx(0.5)
    with pytest.raises(ValueError):
        probe_weight_cosine({(2, "cube"): w}, {(4, "cube"): w})


def test_sgd_keeps_the_last_and_the_best_epoch_of_one_run(known):
    """Same seed, same trajectory: the best-validation model of a 6-epoch run is the last model of a run stopped at
    that epoch. Trained on permuted labels, validation accuracy wanders (measured: best at epoch 2, 0.029; last
    0.0), so the two selections differ."""
    mask, targets = probe_targets(known.items, "cube", CLASSES)
    train, val = mask & (known.split == "train"), mask & (known.split == "val")
    permuted = targets[train][np.random.default_rng(0).permutation(int(train.sum()))]
    arrays = known.image[train], permuted, known.image[val], targets[val]
    settings = {**PROBES["sgd"], "epochs": 6}
    fits = train_probe_sgd(*arrays, **settings, seed=0)
    assert set(fits) == {"last_epoch", "best_val"}
    assert fits["last_epoch"].chosen == "epoch 6" and fits["last_epoch"].selection == "last_epoch"
    best_epoch = int(fits["best_val"].chosen.split()[1])
    assert best_epoch < 6
    stopped = train_probe_sgd(*arrays, **{**settings, "epochs": best_epoch}, seed=0)["last_epoch"]
    np.testing.assert_array_equal(fits["best_val"].weight, stopped.weight)
    assert fits["best_val"].val_accuracy > fits["last_epoch"].val_accuracy
    assert not np.allclose(fits["best_val"].weight, fits["last_epoch"].weight)
    assert fits["last_epoch"].val_accuracy == topk_set_accuracy(fits["last_epoch"].logits(arrays[2]), arrays[3])


def orthogonal_modalities(dim=256, rank=8, n=400, classes=8, seed=0):
    """Image and text embeddings of the same labels in two orthogonal rank-`rank` subspaces of R^dim, with class
    means drawn independently: the unique probe target of either modality lies in its own subspace (the minimiser
    of the penalised loss is in the span of its data), so the true image-text probe-weight cosine is exactly 0."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    labels = rng.integers(0, classes, n)
    y = np.eye(classes, dtype=np.float32)[labels]
    image, text = ((rng.standard_normal((classes, rank))[labels] + 0.5 * rng.standard_normal((n, rank))) @ basis.T
                   for basis in (q[:, :rank], q[:, rank:2 * rank]))
    return image.astype(np.float32), text.astype(np.float32), y


def test_shared_sgd_initialisation_inflates_the_old_cosine():
    """SGD moves a weight only inside the span of its inputs: the seeded initialisation's component outside it
    stays, and image and text probes seeded alike share it. Measured: 0.10 with a shared seed, -0.01 with
    independent seeds, 0 (to 1e-9) for the unique target."""
    image, text, y = orthogonal_modalities()
    train, val = slice(0, 300), slice(300, 400)
    settings = {**PROBES["sgd"], "epochs": 20}

    def sgd(x, seed):
        return {1: train_probe_sgd(x[train], y[train], x[val], y[val], **settings, seed=seed)["last_epoch"].weight}

    shared = probe_weight_cosine(sgd(image, 0), sgd(text, 0))
    independent = probe_weight_cosine(sgd(image, 0), sgd(text, 1))
    assert shared > independent + 0.05, (shared, independent)
    assert abs(independent) < 0.05
    unique = probe_weight_cosine({1: fit_unique_probe(image[train], y[train])[0]},
                                 {1: fit_unique_probe(text[train], y[train])[0]})
    assert unique == pytest.approx(0, abs=1e-6)


def gradient_descent(x, y, l2, steps=20000, lr=0.5):
    """A second solver of fit_unique_probe's objective: plain full-batch gradient descent from a random start."""
    x, y = torch.as_tensor(x, dtype=torch.float64), torch.as_tensor(y, dtype=torch.float64)
    generator = torch.Generator().manual_seed(1)
    weight = torch.randn(y.shape[1], x.shape[1], generator=generator, dtype=torch.float64).requires_grad_()
    bias = torch.randn(y.shape[1], generator=generator, dtype=torch.float64).requires_grad_()
    optimiser = torch.optim.SGD([weight, bias], lr=lr)
    for _ in range(steps):
        optimiser.zero_grad()
        (F.cross_entropy(x @ weight.T + bias, y) + l2 * ((weight ** 2).sum() + (bias ** 2).sum())).backward()
        optimiser.step()
    return weight.detach().numpy()


def test_unique_target_is_the_same_from_any_start_and_solver(known):
    """Two starts of L-BFGS and plain gradient descent reach the same weights, hence the same probe-weight cosine,
    unlike the old cosine of the SGD probes. The weights are centred over classes."""
    l2 = 0.01
    sets = training_probe_sets(known.subset(np.isin(np.arange(len(known.items)), np.arange(400))))
    key = (2, "sphere")
    rows, targets = sets[key]
    found = {}
    for modality, x in (("image", known.image[rows]), ("text", known.caption[rows])):
        zero, bias, gradient = fit_unique_probe(x, targets, l2)
        assert gradient <= UNIQUE_TOLERANCE
        rng = np.random.default_rng(5)
        start = (rng.standard_normal(zero.shape), rng.standard_normal(bias.shape))
        found[modality] = [zero, fit_unique_probe(x, targets, l2, start=start)[0], gradient_descent(x, targets, l2)]
        np.testing.assert_allclose(zero.sum(axis=0), 0, atol=1e-8)  # centred over classes
        np.testing.assert_allclose(bias.sum(), 0, atol=1e-8)
        for other in found[modality][1:]:
            np.testing.assert_allclose(other, zero, atol=1e-5 * np.abs(zero).max())
    cosines = [probe_weight_cosine({key: a}, {key: b}) for a, b in zip(found["image"], found["text"])]
    assert max(cosines) - min(cosines) < 1e-6, cosines


def test_old_cosine_depends_on_the_initialisation(known, results):
    """The old cosine of the authors' SGD probes (last epoch) rests on the image and text probes' shared seeded
    initialisation: with the text probes started from another seed it changes (measured 0.320 against 0.298 here;
    deterministic, both runs are seeded)."""
    image_weights = results["image", "sgd"][1]
    shared = probe_weight_cosine(image_weights, results["text", "sgd"][1])
    other_start = probe_weight_cosine(image_weights, run_probes(known, "text", "sgd", seed=1, **PROBES["sgd"])[1])
    assert abs(shared - other_start) > 0.01, (shared, other_start)


def test_unique_probe_bootstrap_is_seeded_and_paired(known):
    """Resample b draws the same items for either modality: with the text equal to the image embeddings every
    resample's cosine is exactly 1. Same seed, same weights; another seed, other resamples."""
    small = known.subset(np.arange(len(known.items)) < 300)
    sets = training_probe_sets(small)
    assert set(sets) == {(2, s) for s in SHAPES}
    first = unique_probe_weights(small.image, sets, 0.01, 3, seed=0)
    again = unique_probe_weights(small.image, sets, 0.01, 3, seed=0)
    other = unique_probe_weights(small.image, sets, 0.01, 3, seed=1)
    assert len(first) == 4
    for b in range(4):
        assert probe_weight_cosine(first[b], again[b]) == pytest.approx(1, abs=1e-12)
        for key in sets:
            np.testing.assert_array_equal(first[b][key], again[b][key])
    np.testing.assert_array_equal(first[0][(2, "cube")], other[0][(2, "cube")])  # the whole set: no resampling
    assert not np.allclose(first[1][(2, "cube")], other[1][(2, "cube")])
    assert not np.allclose(first[0][(2, "cube")], first[1][(2, "cube")])
