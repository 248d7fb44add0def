"""Rule `figure`: the papers' figures (seaborn), each drawn from the tables and saved as PNG and PDF."""
import math
import sys
import textwrap
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from workflow_scripts.common.files import write_atomically  # noqa: E402
from workflow_scripts.summary import reference  # noqa: E402
from workflow_scripts.summary.runs import read_training_curves  # noqa: E402
from workflow_scripts.summary.tables import HIGH, LOW, share_columns, short_weights  # noqa: E402

INTERVAL_NOTE = "whiskers: 95% intervals"


def weights_note(frame: pd.DataFrame) -> str:
    """What produced the numbers, for the title: each model's weights in a few words."""
    pairs = sorted(set(zip(frame["model_id"], frame["weights"])))
    if len(pairs) == 1:
        return "weights: " + short_weights(pairs[0][1])
    return "weights: " + "; ".join(f"{model}: {short_weights(weights)}" for model, weights in pairs)


def interval_bars(grid, x: str, y: str, hue: str, hue_order, order=None) -> None:
    """A black 95% interval whisker on every bar of a bar catplot drawn with `hue_order`: each bar's row is found
    by its facet, its x category and its hue level (one bar container per level, in order). The x category is
    `order`'s at the bar's position where the grid shares one x order (hidden tick labels), else its axis's label."""
    for (i, j, _), subset in grid.facet_data():
        ax = grid.axes[i, j]
        labels = [t.get_text() for t in ax.get_xticklabels()] if order is None else [str(o) for o in order]
        if subset.empty or not labels:
            continue
        for level, container in zip(hue_order, list(ax.containers)):
            for bar in container:
                centre = bar.get_x() + bar.get_width() / 2
                label = labels[min(max(round(centre), 0), len(labels) - 1)]
                row = subset[(subset[x].astype(str) == label) & (subset[hue] == level)]
                if len(row) != 1 or pd.isna(row[y + LOW].iloc[0]):
                    continue
                value, low, high = (float(row[c].iloc[0]) for c in (y, y + LOW, y + HIGH))
                ax.errorbar(centre, value, yerr=[[value - low], [high - value]], fmt="none", color="black",
                            capsize=2, linewidth=0.8, zorder=4)


def melt_shares(frame: pd.DataFrame, id_vars, shares, var_name: str) -> pd.DataFrame:
    """Long form of share columns (with their intervals): one row per id and share, columns share, share_low95,
    share_high95; rows without a share dropped."""
    parts = [frame.melt(id_vars=id_vars, value_vars=[c + suffix for c in shares], var_name=var_name,
                        value_name="share" + suffix).drop(columns=var_name) for suffix in ("", LOW, HIGH)]
    long = pd.concat(parts, axis=1)
    long.insert(len(id_vars), var_name, [c for c in shares for _ in range(len(frame))])
    return long.loc[:, ~long.columns.duplicated()].dropna(subset=["share"])


def position_shares(frame: pd.DataFrame, id_vars, prefix: str) -> pd.DataFrame:
    """Long form of the numbered shares `<prefix><p>` (share_columns) with their intervals: one row per id and
    position p, an integer."""
    shares = share_columns(frame, prefix)
    columns = [*id_vars, *(c + suffix for c in shares for suffix in ("", LOW, HIGH))]
    long = melt_shares(frame[columns], id_vars, shares, "position")
    long["position"] = long["position"].str.rsplit("_", n=1).str[-1].astype(int)
    return long


def bar_grid(data, x: str, y: str, hue: str, **facets):
    """A bar catplot of one row per bar, with the rows' 95% intervals as whiskers."""
    hue_order = list(dict.fromkeys(data[hue]))
    order = None
    if facets.get("sharex", True):  # one x order for every facet, given explicitly so that bars can be named
        order = sorted(set(data[x])) if pd.api.types.is_numeric_dtype(data[x]) else list(dict.fromkeys(data[x]))
        facets["order"] = order
    grid = sns.catplot(data=data, kind="bar", x=x, y=y, hue=hue, hue_order=hue_order, errorbar=None, **facets)
    interval_bars(grid, x, y, hue, hue_order, order)
    return grid


def chance_line(grid, value: float | str, label: str = "chance") -> None:
    """A dashed line at chance on every panel: `value`, or the mean of column `value` over each panel's rows."""
    if not isinstance(value, str):
        for ax in grid.axes.flat:
            ax.axhline(value, color="gray", linestyle="--", linewidth=1, label=label)
        return
    for (i, j, _), subset in grid.facet_data():
        if not subset.empty:
            grid.axes[i, j].axhline(float(subset[value].mean()), color="gray", linestyle="--", linewidth=1,
                                    label=label)


def with_setting(frame: pd.DataFrame) -> pd.DataFrame:
    """The dataset column with paper A's setting beside it ('demo_spar (PUG:SPAR)'), for panel titles."""
    if "paper_setting" not in frame.columns:
        return frame
    setting = frame["paper_setting"].fillna("")
    return frame.assign(dataset=frame["dataset"].where(setting == "", frame["dataset"] + " (" + setting + ")"))


def probe_panel(probes: pd.DataFrame) -> pd.Series:
    """'<model> / <protocol>: <solver> <selection>' for each probe row."""
    return (probes["model_id"] + " / " + probes["protocol"] + ": " + probes["solver"] + " "
            + probes["selection"].str.replace("_", " "))


def probe_accuracy(tables):
    """One row of panels per model and protocol (authors: SGD, last epoch; clean: best validation epoch)."""
    probes = tables["probes"]
    categories = with_setting(probes[(probes["object"] != "mean")].assign(panel=probe_panel))
    smallest = categories.groupby("dataset")["n_objects"].transform("min")
    data = categories[categories["n_objects"] == smallest]
    grid = bar_grid(data, "object", "test_accuracy", "modality", col="dataset", row="panel", height=3.2,
                    aspect=1.2, sharex=False)  # each dataset its own categories
    grid.set_titles("{row_name}\n{col_name}")
    chance_line(grid, "chance")  # each dataset's own chance
    for ax in grid.axes.flat:
        ax.tick_params(axis="x", labelrotation=60, labelsize=7)
    grid.set_axis_labels("object category", "probe test accuracy")
    return grid.figure, f"Linear probes, fewest objects per dataset ({INTERVAL_NOTE}); {weights_note(data)}"


def probes_vs_objects(tables):
    probes = tables["probes"]
    data = probes[probes["object"] == "mean"].assign(panel=probe_panel)
    grid = sns.relplot(data=data, kind="line", x="n_objects", y="test_accuracy", hue="modality", style="panel",
                       col="dataset", marker="o", height=3.2, aspect=1.2)
    for ax, (_, subset) in zip(grid.axes.flat, data.groupby("dataset")):
        lines = list(ax.get_lines())
        for row in subset.itertuples():  # each point's interval in its line's colour
            line = next(ln for ln in lines if any(px == row.n_objects and py == row.test_accuracy
                                                  for px, py in zip(ln.get_xdata(), ln.get_ydata())))
            low, high = getattr(row, "test_accuracy" + LOW), getattr(row, "test_accuracy" + HIGH)
            ax.errorbar(row.n_objects, row.test_accuracy, yerr=[[row.test_accuracy - low], [high - row.test_accuracy]],
                        fmt="none", color=line.get_color(), capsize=2, linewidth=0.8)
        chance = subset.groupby("n_objects")["chance"].mean()
        ax.plot(chance.index, chance.values, color="gray", linestyle="--", linewidth=1, label="chance")
    grid.set_axis_labels("objects per scene", "mean probe test accuracy")
    return grid.figure, f"Probe accuracy vs number of objects ({INTERVAL_NOTE}, approximate); {weights_note(data)}"


def variant_label(frame: pd.DataFrame) -> pd.Series:
    """The variant, with its epoch selection for our LABCLIP maps ('LABCLIP-HNB last epoch')."""
    selection = frame["selection"].fillna("none") if "selection" in frame.columns else "none"
    suffix = pd.Series(selection, index=frame.index).map(
        lambda s: "" if s in ("none", "released") else "\n" + s.replace("_", " "))
    return frame["variant"] + suffix


def binding_accuracy(tables):
    """Both protocols side by side (hue), one row of panels per model; x marks the paper's numbers on the bars of
    their setting (the table's reference column: authors' protocol, CLEVR, CLIP and LABCLIP-HNB last epoch)."""
    binding = with_setting(tables["binding"].assign(label=variant_label))
    grid = bar_grid(binding, "label", "image_to_text_accuracy", "protocol", col="dataset", row="model_id",
                    height=3.2, aspect=1.5)
    chance_line(grid, 0.5)
    grid.set_titles("{row_name}\n{col_name}")
    order = list(dict.fromkeys(binding["label"]))
    protocols = list(dict.fromkeys(binding["protocol"]))
    for (i, j, _), subset in grid.facet_data():
        rows = subset.dropna(subset=["reference_binding_accuracy"])
        if rows.empty:
            continue
        width = 0.8 / len(protocols)  # seaborn's dodge: the hue levels share 0.8 of each category's width
        x = [order.index(r.label) - 0.4 + width * (protocols.index(r.protocol) + 0.5) for r in rows.itertuples()]
        grid.axes[i, j].scatter(x, rows["reference_binding_accuracy"], marker="x", color="black", zorder=5,
                                label="paper (ViT-B/32, second-hand)")
    for ax in grid.axes.flat:
        ax.tick_params(axis="x", labelsize=7)
    grid.set_axis_labels("", "image-to-text binding accuracy")
    return grid.figure, (f"Cross-modal binding, test split, authors' vs clean protocol ({INTERVAL_NOTE}; x: paper, "
                         f"setting uncertain); {weights_note(binding)}")


def caption_cosines(tables):
    cosines = tables["cosines"].assign(variant=variant_label)
    if "distinct_negative" in cosines.columns:  # a negative equal to its caption has cosine 1 and says nothing
        cosines = cosines[cosines["distinct_negative"].astype(bool)]
    grid = sns.displot(data=cosines, kind="hist", x="cosine", hue="variant", col="dataset", row="model_id",
                       element="step", stat="density", common_norm=False, height=3.2, aspect=1.3)
    grid.set_axis_labels("cosine(caption, attribute-swapped caption)", "density")
    return grid.figure, (f"Caption vs permuted caption (items with a distinct negative), before and after LABCLIP; "
                         f"{weights_note(cosines)}")


def modality_gap(tables):
    binding = tables["binding"]
    binding = binding[binding["protocol"] == "clean"].assign(variant=variant_label)  # the gap has no protocol
    grid = sns.catplot(data=binding, kind="bar", x="variant", y="modality_gap", hue="model_id", col="dataset",
                       height=3.2, aspect=1.3, errorbar=None)
    grid.set_axis_labels("", "distance between image and text centroids")
    return grid.figure, f"Modality gap, test split; {weights_note(binding)}"


def tor_position_bias(tables):
    """Short captions only (the long template's rows are in the table): one row of panels per protocol, dataset
    and model."""
    tor = tables["tor"][lambda t: t["template"] == "short"].copy()
    tor["panel"] = tor["protocol"] + " protocol / " + tor["dataset"] + "\n" + tor["model_id"]  # narrow panels
    data = position_shares(tor, ["panel", "n_objects", "method"], "first_retrieved_share_")
    grid = bar_grid(data, "position", "share", "method", col="n_objects", row="panel", height=2.8, aspect=1.1)
    grid.set_titles("{row_name}\n{col_name} objects")
    positions = sorted(reference.TOR_FIRST_RETRIEVED_SHARE)
    enumerated = tor[(tor["protocol"] == "authors") & (tor["n_objects"] == 4) & (tor["method"] == "caption")
                     & ~tor["sampled"].astype(bool)]  # tor_table marks results that did not record it sampled
    marked = {f"{panel}\n4 objects" for panel in enumerated["panel"]}  # the paper's setting, every caption embedded
    for ax in grid.axes.flat:
        if ax.get_title() in marked:
            ax.scatter([p - 1 for p in positions], [reference.TOR_FIRST_RETRIEVED_SHARE[p] for p in positions],
                       marker="x", color="black", zorder=3)
    grid.set_axis_labels("caption slot", "share retrieved first")
    return grid.figure, ("Text-based object retrieval by caption slot, short captions (authors: combinations in "
                         "vocabulary order; clean: every order balanced, no bias gives 1/n; size_order: one large "
                         "name among small ones, named first or last; x: paper, 4 objects, "
                         f"setting uncertain, beside enumerated rows only; {INTERVAL_NOTE}); {weights_note(tor)}")


def caption_tor_position(tables):
    """One row of panels per dataset, model and candidate set; one column per object count; bars per reading."""
    tor = tables["caption_tor"].copy()
    tor["panel"] = tor["dataset"] + " / " + tor["model_id"] + "\nnearest of " + tor["candidates"]
    data = position_shares(tor, ["panel", "n_objects", "reading", "chance"], "first_retrieved_share_")
    grid = bar_grid(data, "position", "share", "reading", col="n_objects", row="panel", height=2.8, aspect=1.1,
                    sharex=False)
    chance_line(grid, "chance", "no order bias (1/n)")
    grid.set_titles("{row_name}\n{col_name} objects")
    grid.set_axis_labels("caption slot", "share retrieved first")
    return grid.figure, ("Text-based object retrieval on real captions by slot (as written: the captions; rotated: "
                         "their object phrases rotated through the slots; dashed: 1/n, no order bias on rotated "
                         f"captions; {INTERVAL_NOTE}); {weights_note(tor)}")


def prompt_order(tables):
    """One row of panels per dataset, one column per object count: the share of images whose most prominent object
    is named at each position, per measure; chance dashed."""
    data = tables["prompt_order"].copy()
    data = data[data["n_objects"].astype(str) != "all"]
    data["panel"] = data["dataset"] + " / " + data["model_id"]
    data["n_objects"] = data["n_objects"].astype(str) + " objects"
    long = position_shares(data, ["panel", "n_objects", "measure", "chance"], "share_position_")
    grid = bar_grid(long, "position", "share", "measure", col="n_objects", row="panel", height=2.8, aspect=1.1,
                    sharex=False)
    chance_line(grid, "chance")
    grid.set_titles("{row_name}\n{col_name}")
    grid.set_axis_labels("position in the prompt", "share of images")
    return grid.figure, ("Prompt order in text-to-image generation: where the prompt names the object an image shows "
                         f"most prominently, per dataset / text-to-image model (dashed: chance; {INTERVAL_NOTE})")


def ior_large_object(tables):
    ior = tables["ior"].copy()
    ior["large_position"] = ior["large_position"].astype(str)
    shares = ["large_first_share"] + share_columns(ior, "small_first_share_")
    ior["panel"] = (ior["dataset"] + " / " + ior["model_id"] + "\nranked among "
                    + ior["ranked_among"].str.replace("_", " "))
    data = melt_shares(ior, ["panel", "n_objects", "large_position"], shares, "object")
    data["object"] = data["object"].str.replace("_first_share", "").str.replace("_", " ")
    grid = bar_grid(data, "large_position", "share", "object", col="n_objects", row="panel", height=2.8,
                    aspect=1.2, sharex=False)
    grid.set_titles("{row_name}\n{col_name} objects")
    for ax in grid.axes.flat:
        if "own objects" in ax.get_title() and ax.get_title().endswith("\n4 objects"):  # the paper's case
            labels = [t.get_text() for t in ax.get_xticklabels()]
            if "all" in labels:
                x = labels.index("all")
                references = [reference.IOR_LARGE_FIRST_SHARE, *reference.IOR_SMALL_FIRST_SHARE]
                ax.scatter([x] * len(references), references, marker="x", color="black", zorder=3)
    grid.set_axis_labels("caption position of the large object", "share retrieved first")
    return grid.figure, (f"Image-based object retrieval: large vs small objects (x: paper, 4 objects; {INTERVAL_NOTE}); "
                         f"{weights_note(ior)}")


def matching_conditions(tables):
    """Per dataset and model, one row of panels per protocol, one column per object count: this workflow's
    conditions (x) per method, and the authors' two scenarios per position of the large object in the scene's
    object list (x: "1".."n", one folder of scenes each as the authors report them, and "pooled"); chance dashed.
    Drawn bar by bar (the two rows differ in x and hue), each bar with its 95% interval whisker."""
    matching = tables["matching"].copy()
    matching["panel"] = matching["dataset"] + " / " + matching["model_id"]
    kinds = {"workflow": ("condition", "method", "workflow conditions"),
             "authors": ("large_position", "condition", "authors' scenarios by large-object position")}
    lines = [(panel, protocol) for panel in dict.fromkeys(matching["panel"]) for protocol in kinds
             if ((matching["panel"] == panel) & (matching["protocol"] == protocol)).any()]
    counts = sorted(set(matching["n_objects"]))
    figure, axes = plt.subplots(len(lines), len(counts), figsize=(4.8 * len(counts), 3.8 * len(lines)),
                                squeeze=False, sharey=True)
    for (panel, protocol), line in zip(lines, axes):
        x, hue, what = kinds[protocol]
        section = matching[(matching["panel"] == panel) & (matching["protocol"] == protocol)]
        hue_order = list(dict.fromkeys(section[hue]))
        colours = dict(zip(hue_order, sns.color_palette(n_colors=len(hue_order))))
        width = 0.8 / len(hue_order)
        drawn = []
        for n, ax in zip(counts, line):
            data = section[section["n_objects"] == n]
            ax.set_title(f"{panel}, {n} objects\n{what}", fontsize=9)
            if data.empty:
                ax.set_axis_off()
                continue
            order = list(dict.fromkeys(data[x]))  # the table's order: conditions ranked, positions then "pooled"
            for h, level in enumerate(hue_order):
                bars = data[data[hue] == level].set_index(x).reindex(order)
                bars["centre"] = [i - 0.4 + width * (h + 0.5) for i in range(len(order))]
                bars = bars.dropna(subset=["accuracy"])
                value, low, high = (bars["accuracy" + suffix] for suffix in ("", LOW, HIGH))
                ax.bar(bars["centre"], value, width, color=colours[level], label=level)
                ax.errorbar(bars["centre"], value, yerr=[value - low, high - value], fmt="none", color="black",
                            capsize=2, linewidth=0.8, zorder=4)
            ax.axhline(0.5, color="gray", linestyle="--", linewidth=1)
            if protocol == "workflow":
                ax.set_xticks(range(len(order)), order, rotation=60, ha="right", rotation_mode="anchor")
            else:
                ax.set_xticks(range(len(order)), order)
                ax.axvline(len(order) - 1.5, color="gray", linestyle=":", linewidth=1)  # positions | pooled
                ax.set_xlabel("position of the large object")
            ax.set_ylim(0, 1.02)
            drawn.append(ax)
        line[0].set_ylabel("caption vs distractor accuracy")
        drawn[-1].legend(title="method" if protocol == "workflow" else "scenario", loc="upper left",
                         bbox_to_anchor=(1.02, 1), fontsize=8, title_fontsize=8)
    return figure, ("Image-text matching under reordering and resizing: this workflow's conditions per method, and "
                    "the authors' two scenarios per position of the large object in the scene (one folder of scenes "
                    "each, as the authors report them) beside 'pooled' over all positions (dashed: chance; "
                    f"{INTERVAL_NOTE}, pairs taken as independent); {weights_note(matching)}")


def training_curve(tables: dict[str, pd.DataFrame]):
    curves = tables["runs"]
    figure, ax = plt.subplots(figsize=(6.5, 3.8))
    for run, curve in curves.groupby("run", sort=True):
        line, = ax.plot(curve["step"], curve["loss"], label=run, linewidth=1)
        saved = curve[curve["checkpoint"]]
        ax.plot(saved["step"], saved["loss"], "o", color=line.get_color(), markersize=4)
    for batch in sorted(set(curves["batch_size"])):  # a CLIP that has learnt nothing: every pairing equally likely
        ax.axhline(math.log(batch), color="grey", linestyle="--", linewidth=0.8)
        ax.annotate(f"ln {batch} (chance)", (curves["step"].max(), math.log(batch)), ha="right", va="bottom",
                    fontsize=8, color="grey")
    ax.set(xlabel="training step", ylabel="contrastive loss (batch mean)", ylim=(0, None))
    ax.legend(title="run", fontsize=8)
    return figure, ("Contrastive (symmetric InfoNCE) loss of each CLIP trained in this workflow on synthetic scenes, "
                    "per step; dots: saved checkpoints")


def training_progression(tables):
    """One line per run (colour: its caption order) over its checkpoints; a panel per measure and object count."""
    progression = tables["progression"].copy()
    progression["object count"] = progression["n_objects"].astype(str) + " objects"
    orders = sorted(set(progression["caption_order"]))
    grid = sns.relplot(data=progression, kind="line", x="step", y="share", hue="caption_order", hue_order=orders,
                       units="run", estimator=None, marker="o", markersize=4, linewidth=1, col="measure",
                       row="object count", height=2.4, aspect=1.3, facet_kws={"margin_titles": True})
    colours = dict(zip(orders, sns.color_palette(n_colors=len(orders))))
    for (row, col), ax in grid.axes_dict.items():
        panel = progression[(progression["object count"] == row) & (progression["measure"] == col)]
        for order, points in panel.groupby("caption_order"):
            ax.errorbar(points["step"], points["share"], yerr=[points["share"] - points["share" + LOW],
                                                               points["share" + HIGH] - points["share"]],
                        fmt="none", color=colours[order], alpha=0.5, capsize=1.5, linewidth=0.7)
        if panel["chance"].notna().any():
            ax.axhline(panel["chance"].dropna().iloc[0], color="grey", linestyle="--", linewidth=0.8)
    grid.set_titles(row_template="{row_name}", col_template="{col_name}")
    grid.set_axis_labels("training step", "share")
    grid.set(ylim=(0, 1))
    return grid.figure, ("First-named (TOR) and large-object (IOR) shares over training of each CLIP trained in "
                         "this workflow on synthetic scenes, one line per run (dashed: chance, 1/n; "
                         f"{INTERVAL_NOTE}); precision {', '.join(sorted(set(progression['precision'])))}")


def mention_order(tables):
    """Per dataset and object-listing method (rows) and number of named objects (columns): the share of captions
    whose largest object stands at each position, one bar per source of areas, random order dashed."""
    rows = tables["mention_order"]
    data = rows[(rows["measure"] == "largest named object's position") & (rows["n_objects"] != "all")].copy()
    data["k"] = data["n_objects"].astype(int)
    data["position"] = data["position"].astype(int)
    if data.empty:  # text-only datasets (LAION metadata): nothing has an area
        figure, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "No dataset has captions with two or more objects with areas\n(objects_per_caption.md has "
                "the text-only statistics)", ha="center", va="center")
        return figure, "Where captions name their largest object"
    data["panel"] = data["dataset"] + " / " + data["method"]
    grid = bar_grid(data, "position", "share", "areas", col="k", row="panel", height=2.6, aspect=1.1, sharex=False)
    grid.set_titles("{row_name}\n{col_name} objects named")
    chance_line(grid, "chance", "random order (1/k)")
    grid.set_axis_labels("largest object's position", "share of captions")
    for (i, j, _), subset in grid.facet_data():
        grid.axes[i, j].set_visible(not subset.empty)  # a dataset and method without captions naming k objects
    models = sorted(set(data["area_model"]))
    return grid.figure, ("Where captions name their largest object, against a random order (dashed, 1/k); areas "
                         f"from {', '.join(models)}; protocol authors: the llm panels' detector and segmenter bars, "
                         f"the rest the workflow's; precision {'; '.join(sorted(set(data['precision'])))} "
                         f"({INTERVAL_NOTE} over images)")


def slot_classification(tables):
    """Per dataset and model (rows) and task (columns): test accuracy of each slot's head, chance dashed."""
    slots = tables["slot_classification"].copy()
    slots["panel"] = slots["dataset"] + " / " + slots["model_id"]
    slots["task"] = slots["task"] + ": " + slots["modality"] + ", slots by " + slots["slot_order"]
    slots["split"] = "test"
    slots["slot"] = slots["slot"].astype(str) + "\nn=" + slots["n_test"].astype(str)  # each bar's test count
    grid = bar_grid(slots, "slot", "test_accuracy", "split", col="task", row="panel", height=2.8, aspect=1.6,
                    sharex=False, legend=False)
    chance_line(grid, "chance")
    grid.set_titles("{row_name}\n{col_name}")
    grid.set_axis_labels("slot (test items)", "test accuracy")
    grid.set(ylim=(0, 1))
    return grid.figure, ("Object classification by slot (paper B's IOC and TOC, our reading): a linear head per slot "
                         f"names its object; dashed: chance ({INTERVAL_NOTE}); {weights_note(slots)}")


def attention_by_size(tables):
    """Per dataset and model (rows): the large object's and a small one's attention share and attention per unit
    area by object count, and the share of images whose large object draws the most attention, and the most per
    unit area (chance dashed)."""
    from workflow_scripts.summary.tables import MOST_ATTENTION

    data = tables["attention"].copy()
    data = data[data["measure"] != "area share"]
    data["panel"] = data["dataset"] + " / " + data["model_id"] + "\n" + data["layers"]
    data["measure"] = data["measure"].str.replace(MOST_ATTENTION + " ", "images whose large object\ndraws the most ")
    data["n_objects"] = data["n_objects"] + "\nn=" + data["n_images"].astype(str)
    grid = bar_grid(data, "n_objects", "value", "object", col="measure", row="panel", height=2.8, aspect=1.1,
                    sharex=False, sharey=False)
    for (i, j, _), subset in grid.facet_data():
        if subset.empty:
            continue
        ax = grid.axes[i, j]
        if subset["measure"].iloc[0] == "attention per unit area":
            ax.axhline(1.0, color="gray", linestyle=":", linewidth=1)  # attention in proportion to the pixels
        elif subset["chance"].notna().any():  # each object count its own chance, under its bar
            chance = dict(zip(subset["n_objects"], subset["chance"]))
            for x, label in enumerate(tick.get_text() for tick in ax.get_xticklabels()):
                ax.hlines(chance[label], x - 0.45, x + 0.45, color="gray", linestyle="--", linewidth=1)
    grid.set_titles("{row_name}\n{col_name}")
    grid.set_axis_labels("objects per scene (images)", "")
    return grid.figure, ("CLS attention by object size (paper B's figure 3, our reading), scenes with one large "
                         "object: dotted, attention in proportion to pixels; dashed, chance "
                         f"({INTERVAL_NOTE}); {weights_note(data)}")


PAPER_A_FIGURES = {f.__name__: f for f in (probe_accuracy, probes_vs_objects, binding_accuracy, caption_cosines,
                                           modality_gap)}
PAPER_B_FIGURES = {f.__name__: f for f in (tor_position_bias, ior_large_object, matching_conditions,
                                           mention_order, slot_classification, attention_by_size,
                                           caption_tor_position, prompt_order)}
FIGURES = {**PAPER_A_FIGURES, **PAPER_B_FIGURES, "training_curve": training_curve,
           "training_progression": training_progression}


def draw(name: str, tables: dict[str, pd.DataFrame], png, pdf) -> None:
    figure, title = FIGURES[name](tables)
    # Wrapped to the figure's width (about 15 characters of 9-point text per inch), which narrow grids need;
    # matplotlib's own wrap=True lets a centred title's first line run past the edge.
    suptitle = figure.suptitle(textwrap.fill(title, int(figure.get_figwidth() * 15)), fontsize=9)
    renderer = figure.canvas.get_renderer()
    legend_width = 0.0  # seaborn's figure legend stands at the right edge: keep the panels clear of it
    if figure.legends:
        legend_width = figure.legends[0].get_window_extent(renderer).width / figure.bbox.width
    # tight_layout leaves a title of several lines over the first row's panel titles: keep the panels below it
    title_height = suptitle.get_window_extent(renderer).height / figure.bbox.height
    figure.tight_layout(rect=(0, 0, 1 - legend_width, 1 - title_height - 0.005))
    for path in (png, pdf):
        write_atomically(path, lambda partial: figure.savefig(partial, dpi=150))
    plt.close(figure)


def main(snakemake) -> None:
    from workflow_scripts.common.logs import start_job
    from workflow_scripts.summary.tables import read_results

    start_job(snakemake)
    tables = {}
    for key, path in snakemake.input.items():
        if key == "runs":
            tables[key] = read_training_curves(path)
        elif isinstance(path, str) and path.endswith(".csv"):
            tables[key] = pd.read_csv(path)
        else:
            tables[key] = read_results(path)
    draw(snakemake.wildcards.figure, tables, snakemake.output.png, snakemake.output.pdf)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
