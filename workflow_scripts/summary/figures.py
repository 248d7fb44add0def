"""Rule `figure`: the papers' figures (seaborn), each drawn from the tables and saved as PNG and PDF."""
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from workflow_scripts.summary import reference  # noqa: E402


def weights_note(frame: pd.DataFrame) -> str:
    """What produced the numbers, for the title; random weights are said to be random."""
    weights = sorted(set(frame["weights"]))
    if any(w.startswith("random") for w in weights):
        return "RANDOM WEIGHTS: shows the pipeline, not CLIP's behaviour"
    return "weights: " + "; ".join(weights)


def chance_line(grid, value: float, label: str = "chance") -> None:
    for ax in grid.axes.flat:
        ax.axhline(value, color="gray", linestyle="--", linewidth=1, label=label)


def probe_accuracy(tables):
    probes = tables["probes"]
    categories = probes[(probes["object"] != "mean")]
    smallest = categories.groupby("dataset")["n_objects"].transform("min")
    data = categories[categories["n_objects"] == smallest]
    grid = sns.catplot(data=data, kind="bar", x="object", y="test_accuracy", hue="modality", col="dataset",
                       row="model_id", height=3.2, aspect=1.2, errorbar=None)
    chance_line(grid, float(data["chance"].mean()))
    grid.set_axis_labels("object category", "probe test accuracy")
    return grid.figure, f"Linear probes, fewest objects per dataset; {weights_note(data)}"


def probes_vs_objects(tables):
    probes = tables["probes"]
    data = probes[probes["object"] == "mean"]
    grid = sns.relplot(data=data, kind="line", x="n_objects", y="test_accuracy", hue="modality", style="model_id",
                       col="dataset", marker="o", height=3.2, aspect=1.2)
    for ax, (_, subset) in zip(grid.axes.flat, data.groupby("dataset")):
        chance = subset.groupby("n_objects")["chance"].mean()
        ax.plot(chance.index, chance.values, color="gray", linestyle="--", linewidth=1, label="chance")
    grid.set_axis_labels("objects per scene", "mean probe test accuracy")
    return grid.figure, f"Probe accuracy vs number of objects; {weights_note(data)}"


def binding_accuracy(tables):
    binding = tables["binding"]
    grid = sns.catplot(data=binding, kind="bar", x="variant", y="image_to_text_accuracy", hue="model_id",
                       col="dataset", height=3.2, aspect=1.3, errorbar=None)
    chance_line(grid, 0.5)
    for ax in grid.axes.flat:
        variants = [t.get_text() for t in ax.get_xticklabels()]
        ax.scatter(variants, [reference.BINDING_ACCURACY.get(v, float("nan")) for v in variants], marker="x", color="black",
                   zorder=3, label="paper (ViT-B/32)")
    grid.set_axis_labels("", "image-to-text binding accuracy")
    return grid.figure, f"Cross-modal binding, test split; {weights_note(binding)}"


def caption_cosines(tables):
    cosines = tables["cosines"]
    grid = sns.displot(data=cosines, kind="hist", x="cosine", hue="variant", col="dataset", row="model_id",
                       element="step", stat="density", common_norm=False, height=3.2, aspect=1.3)
    grid.set_axis_labels("cosine(caption, attribute-swapped caption)", "density")
    return grid.figure, f"Caption vs permuted caption, before and after LABCLIP; {weights_note(cosines)}"


def modality_gap(tables):
    binding = tables["binding"]
    grid = sns.catplot(data=binding, kind="bar", x="variant", y="modality_gap", hue="model_id", col="dataset",
                       height=3.2, aspect=1.3, errorbar=None)
    grid.set_axis_labels("", "distance between image and text centroids")
    return grid.figure, f"Modality gap, test split; {weights_note(binding)}"


def tor_position_bias(tables):
    tor = tables["tor"]
    shares = [c for c in tor.columns if c.startswith("first_retrieved_share_")]
    data = tor.melt(id_vars=["model_id", "weights", "template", "n_objects", "method"], value_vars=shares,
                    var_name="position", value_name="share").dropna(subset=["share"])
    data["position"] = data["position"].str.rsplit("_", n=1).str[-1].astype(int)
    grid = sns.catplot(data=data, kind="bar", x="position", y="share", hue="method", col="n_objects",
                       row="template", height=2.8, aspect=1.1, errorbar=None)
    positions = sorted(reference.TOR_FIRST_RETRIEVED_SHARE)
    for ax in grid.axes.flat:
        if "n_objects = 4" in ax.get_title() and "template = short" in ax.get_title():  # the paper's case
            ax.scatter([p - 1 for p in positions], [reference.TOR_FIRST_RETRIEVED_SHARE[p] for p in positions],
                       marker="x", color="black", zorder=3)
    grid.set_axis_labels("caption position", "share retrieved first")
    return grid.figure, f"Text-based object retrieval by caption position (x: paper, 4 objects); {weights_note(tor)}"


def ior_large_object(tables):
    ior = tables["ior"].copy()
    ior["large_position"] = ior["large_position"].astype(str)
    shares = ["large_first_share"] + [c for c in ior.columns if c.startswith("small_first_share_")]
    data = ior.melt(id_vars=["dataset", "model_id", "n_objects", "large_position"], value_vars=shares,
                    var_name="object", value_name="share").dropna(subset=["share"])
    data["object"] = data["object"].str.replace("_first_share", "").str.replace("_", " ")
    data["panel"] = data["dataset"] + " / " + data["model_id"]
    grid = sns.catplot(data=data, kind="bar", x="large_position", y="share", hue="object", col="n_objects",
                       row="panel", height=2.8, aspect=1.2, errorbar=None, sharex=False)
    grid.set_titles("{row_name}, {col_name} objects")
    for ax in grid.axes.flat:
        if ax.get_title().endswith(", 4 objects"):  # the paper's figure: one large and three small objects
            labels = [t.get_text() for t in ax.get_xticklabels()]
            if "all" in labels:
                x = labels.index("all")
                references = [reference.IOR_LARGE_FIRST_SHARE, *reference.IOR_SMALL_FIRST_SHARE]
                ax.scatter([x] * len(references), references, marker="x", color="black", zorder=3)
    grid.set_axis_labels("caption position of the large object", "share retrieved first")
    return grid.figure, (f"Image-based object retrieval: large vs small objects (x: paper, 4 objects); "
                         f"{weights_note(ior)}")


def matching_conditions(tables):
    matching = tables["matching"].copy()
    matching["panel"] = matching["dataset"] + " / " + matching["model_id"]
    grid = sns.catplot(data=matching, kind="bar", x="condition", y="accuracy", hue="method", col="n_objects",
                       row="panel", height=3.0, aspect=1.5, errorbar=None, sharex=False)
    chance_line(grid, 0.5)
    for ax in grid.axes.flat:
        ax.tick_params(axis="x", labelrotation=60)
    grid.set_titles("{row_name}, {col_name} objects")
    grid.set_axis_labels("", "caption vs distractor accuracy")
    return grid.figure, f"Image-text matching under reordering and resizing; {weights_note(matching)}"


PAPER_A_FIGURES = {f.__name__: f for f in (probe_accuracy, probes_vs_objects, binding_accuracy, caption_cosines,
                                           modality_gap)}
PAPER_B_FIGURES = {f.__name__: f for f in (tor_position_bias, ior_large_object, matching_conditions)}
FIGURES = {**PAPER_A_FIGURES, **PAPER_B_FIGURES}


def draw(name: str, tables: dict[str, pd.DataFrame], png, pdf) -> None:
    figure, title = FIGURES[name](tables)
    figure.suptitle(title, fontsize=9, wrap=True)  # wrapped to the figure's width, which narrow grids need
    figure.tight_layout()
    for path in (png, pdf):
        figure.savefig(path, dpi=150)
    plt.close(figure)


def main(snakemake) -> None:
    from workflow_scripts.common.logs import log_to
    from workflow_scripts.summary.tables import read_results

    log_to(snakemake.log[0])
    tables = {}
    for key, path in snakemake.input.items():
        tables[key] = pd.read_csv(path) if isinstance(path, str) and path.endswith(".csv") else read_results(path)
    draw(snakemake.wildcards.figure, tables, snakemake.output.png, snakemake.output.pdf)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
