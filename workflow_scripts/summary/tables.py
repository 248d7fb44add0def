"""Rule `table`: the papers' tables, each gathering one analysis' results over every dataset and model, as CSV
and Markdown, with the papers' reference numbers beside ours where they give any (TABLES says which)."""
import re
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

import numpy as np
import pandas as pd

from workflow_scripts.common.intervals import Z95, wilson_interval
from workflow_scripts.common.parquet import TRAINED_HERE, read_provenance, read_table
from workflow_scripts.summary import reference
from workflow_scripts.summary.runs import read_heldout, read_training_curves, run_statuses, select_run


LOW, HIGH = "_low95", "_high95"  # suffixes of a share's interval columns
# Per table: the shares that get a 95% interval, each with the column that counts the items it is a share of.
SHARE_COUNTS = {
    "probes": {"test_accuracy": "n_test"},
    "binding": {"image_to_text_accuracy": "n_scored", "text_to_image_accuracy": "n_twin_pairs",
                **{f"recall_at_{k}": "n_recall_images" for k in (1, 5, 10)}},
    "tor": {"top_n_accuracy": "n_captions", "not_mentioned_share": "n_captions",
            **{f"first_retrieved_share_{p}": "n_captions" for p in range(1, 6)},
            **{f"correct_first_retrieved_share_{p}": "n_top_n_correct" for p in range(1, 6)}},
    "ior": {"top_n_accuracy": "n_images", "large_first_share": "n_large_images",
            **{f"small_first_share_{j}": "n_large_images" for j in range(1, 6)},
            **{f"first_retrieved_share_{p}": "n_images" for p in range(1, 6)}},
    "matching": {"accuracy": "n_pairs"},
    "compositional": {"accuracy": "n_items"},
    "recall": {"recall": "n_queries"},
    "training_progression": {"share": "n"},
    "mention_order": {"share": "n_captions"},
    "objects_per_caption": {"share": "n_captions"},
    "slot_classification": {"test_accuracy": "n_test"},
    "prompt_order": {"share": "n_images", **{f"share_position_{p}": "n_images" for p in range(1, 6)}},
    "caption_tor": {"top_n_accuracy": "n_captions", "not_mentioned_share": "n_captions",
                    **{f"first_retrieved_share_{p}": "n_captions" for p in range(1, 6)}},
}


def with_intervals(table: pd.DataFrame, name: str) -> pd.DataFrame:
    """The table with `<share>_low95` and `<share>_high95` beside each share SHARE_COUNTS names for it: Wilson
    intervals, except on rows whose analysis gave the interval itself (a macro-average's)."""
    table = table.copy()
    for share, count in SHARE_COUNTS[name].items():
        if share in table.columns:
            wilson = wilson_interval(table[share], table[count])
            given = {suffix: table.pop(share + suffix) for suffix in (LOW, HIGH) if share + suffix in table.columns}
            at = table.columns.get_loc(share) + 1
            for offset, (suffix, bound) in enumerate(zip((LOW, HIGH), wilson)):
                bound = pd.Series(bound, index=table.index)
                table.insert(at + offset, share + suffix, given[suffix].fillna(bound) if suffix in given else bound)
    return table


def share_columns(table: pd.DataFrame, prefix: str) -> list[str]:
    """The table's numbered share columns `<prefix><p>` (first_retrieved_share_1, ...), without their intervals."""
    return [c for c in table.columns if c.startswith(prefix) and not c.endswith((LOW, HIGH))]


def interval_text(value, low, high) -> str:
    """'0.500 [0.237, 0.763]': a share with its 95% interval; blank where the share is missing."""
    if value is None or value != value:
        return ""
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def counted_interval_text(value, low, high, n) -> str:
    """'0.500 [0.237, 0.763], n=10': a share with its 95% interval and its count; blank where the share is missing."""
    text = interval_text(value, low, high)
    return f"{text}, n={int(n)}" if text else ""



def short_weights(weights: str) -> str:
    """A model's weights in a few words: random weights said to be random, a CLIP trained here with its run and
    step (without the checkpoint's path and sha256, which the CSV tables and the table's footnote keep)."""
    if weights.startswith("random"):
        return "RANDOM weights (the pipeline, not CLIP's behaviour)"
    trained = re.match(re.escape(TRAINED_HERE) + r" \(run (\w+):[^;]*?(, fine-tuned from model [^;]+)?; "
                       r"(step \d+ of \d+)\)", weights)
    if trained:
        return f"{TRAINED_HERE} (run {trained[1]}{trained[2] or ''}, {trained[3]})"
    return weights


def markdown_table(rows: list[dict], columns: list[str]) -> str:
    """A GitHub-flavoured Markdown table of `columns`; floats with 3 decimals, a share that has interval columns
    with its 95% interval, missing values blank; weights in a few words, in full below the table."""

    def cell(row, column) -> str:
        value = row.get(column)
        if column == "weights" and isinstance(value, str):
            return short_weights(value)
        if column + LOW in row:
            return interval_text(value, row[column + LOW], row[column + HIGH])
        if value is None or value is pd.NA or (isinstance(value, float) and value != value):
            return ""
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row, c) for c in columns) + " |" for row in rows]
    full = sorted({(row.get("model_id"), row["weights"]) for row in rows if "weights" in columns
                   and isinstance(row.get("weights"), str) and short_weights(row["weights"]) != row["weights"]})
    if full:
        lines += ["", *(f"Weights of {model}: {weights}." for model, weights in full)]
    return "\n".join(lines) + "\n"


INTERVAL_NOTE = ("Shares and accuracies show their 95% Wilson interval in brackets; the n columns say of how many "
                 "items each is a share.")


RANDOM_NOTE = ("Rows whose weights are a random initialisation show that the pipeline runs; "
               "they say nothing about CLIP.")


def read_results(paths) -> pd.DataFrame:
    """Concatenate per-(dataset, model) or per-model result files, adding the dataset (where the file has
    one), model_id, weights, precision and activation columns from their provenance (precision "unrecorded" in
    files written before it was recorded; activation only where the file records it)."""
    frames = []
    for path in paths:
        provenance = {"precision": "unrecorded", **read_provenance(path)}
        frame = read_table(path, what="a result table").to_pandas()
        for key in ("activation", "precision", "weights", "model_id", "dataset"):
            if key in provenance:
                frame.insert(0, key, provenance[key])
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def _kind(table: pd.DataFrame) -> pd.Series:
    """Each row's dataset kind ('' where the results predate the dataset_kind column)."""
    return table["dataset_kind"] if "dataset_kind" in table.columns else pd.Series("", index=table.index)


def _setting(table: pd.DataFrame) -> pd.Series:
    """Each row's paper A setting (CLEVR, PUG:SPAR, PUG:SPARE; '' for none, or where the results predate the
    paper_setting column)."""
    if "paper_setting" not in table.columns:
        return pd.Series("", index=table.index)
    return table["paper_setting"].fillna("")


def _paper_a_numbers(table: pd.DataFrame, numbers: dict, by: str, where) -> pd.Series:
    """numbers[the row's setting][the row's `by` value] for the rows `where` holds; NaN elsewhere and where
    REFERENCE.md gives no number."""
    return pd.Series([numbers.get(setting, {}).get(key, np.nan) if ok else np.nan
                      for setting, key, ok in zip(table["paper_setting"], table[by], where)],
                     index=table.index, dtype=float)


PAPER_A_NOTE = ("'paper': paper A's number for ViT-B/32 on its own data of the dataset's setting (CLEVR; PUG:SPAR "
                "or PUG:SPARE for a PUG download, kind pug, or for our own renders in that design, kind spar), beside "
                "the authors'-protocol rows of datasets of that setting only")


def by_setting(table: pd.DataFrame, keys: list[str], value: str, count: str, paper: str) -> tuple[list, list]:
    """Paper A's layout: one row per `keys`, one column per dataset, headed by its setting where it has one
    ('demo_spar (PUG:SPAR)'); each cell the share with its interval and count and, where the paper gives one, its
    number. Returns the rows and the columns for markdown_table."""
    table = table.assign(paper_setting=_setting(table))
    headings = {d: f"{d} ({s})" if s else d for d, s in table.groupby("dataset", sort=False)["paper_setting"].first()
                .items()}
    rows = []
    for key, group in table.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, key))
        for record in group.to_dict("records"):
            cell = counted_interval_text(record[value], record[value + LOW], record[value + HIGH], record[count])
            if cell and record.get(paper) == record.get(paper):  # a paper number, not NaN or missing
                cell += f" (paper {record[paper]:.2f})"
            row[headings[record["dataset"]]] = cell
        rows.append(row)
    return rows, keys + list(headings.values())


PROBE_PROTOCOLS = ("Protocol 'authors': SGD (lr 0.1, batch 32, 100 epochs) with the last epoch kept, as the authors "
                   "do. Protocol 'clean': the same SGD run with the epoch of best validation accuracy kept "
                   "(selection best_val), or L-BFGS with its l2 chosen on validation; it changes only which model "
                   "is kept.")


def probe_table(probes: pd.DataFrame) -> pd.DataFrame:
    """Per-category rows, then a 'mean' row per (dataset, model, modality, solver, selection, objects). The paper's
    accuracies stand beside the mean rows of the authors' protocol (SGD, last epoch) for two objects on CLEVR-kind
    datasets only. A mean row's counts are the categories' summed, so its interval treats the (unweighted) mean
    accuracy as a share of all their test items: an approximation."""
    probes = probes.assign(dataset_kind=_kind(probes), paper_setting=_setting(probes))
    keys = [k for k in ("dataset", "dataset_kind", "paper_setting", "model_id", "weights", "precision", "modality",
                        "protocol", "solver", "selection", "n_objects") if k in probes.columns]
    means = probes.groupby(keys, as_index=False)[["train_accuracy", "val_accuracy", "test_accuracy", "chance"]].mean()
    means = means.merge(probes.groupby(keys, as_index=False)[["n_train", "n_val", "n_test"]].sum(), on=keys)
    means["object"] = "mean"
    table = pd.concat([probes, means], ignore_index=True).sort_values(keys + ["object"], kind="stable")
    is_reference = ((table["object"] == "mean") & (table["n_objects"] == 2) & (table["protocol"] == "authors")
                    & table["paper_setting"].isin(list(reference.PROBE_ACCURACY)))
    table["reference_test_accuracy"] = _paper_a_numbers(table, reference.PROBE_ACCURACY, "modality", is_reference)
    table["reference_source"] = [reference.source(s) if ok else "" for s, ok in zip(table["paper_setting"],
                                                                                     is_reference)]
    return with_intervals(table.reset_index(drop=True), "probes")


def probe_markdown(table: pd.DataFrame) -> str:
    keys = [k for k in ("dataset", "model_id", "weights", "precision", "modality", "n_objects", "protocol", "solver",
                        "selection") if k in table.columns]
    table = table.assign(cell=[counted_interval_text(*cell) for cell in zip(
        table["test_accuracy"], table["test_accuracy" + LOW], table["test_accuracy" + HIGH], table["n_test"])])
    wide = table.pivot(index=keys, columns="object", values="cell").reset_index()
    chance = table[table["object"] == "mean"].set_index(keys)["chance"]
    paper = table[table["object"] == "mean"].set_index(keys)["reference_test_accuracy"]
    rows = []
    for row in wide.to_dict("records"):
        key = tuple(row[k] for k in keys)
        rows.append({**row, "chance": chance[key], "paper": paper[key]})
    shapes = [c for c in wide.columns if c not in keys and c != "mean"]
    columns = keys + shapes + ["mean", "chance", "paper"]
    return ("# Linear probe test accuracy\n\nOne probe per object category predicts that object's attribute (CLEVR: "
            f"its colour); each cell is the test accuracy with its 95% Wilson interval and the number of test items "
            f"(for 'mean', the categories' unweighted mean and their summed items). {PROBE_PROTOCOLS} {PAPER_A_NOTE} "
            f"(mean rows of two-object scenes; REFERENCE.md has probe accuracies for CLEVR only); "
            f"{reference.UNCERTAIN}.\n{RANDOM_NOTE}\n\n" + markdown_table(rows, columns)
            + probe_settings_markdown(table))


def probe_settings_markdown(table: pd.DataFrame) -> str:
    """The mean probe accuracy of two-object scenes, protocol authors, the datasets side by side."""
    means = table[(table["object"] == "mean") & (table["n_objects"] == 2) & (table["protocol"] == "authors")]
    if means.empty:
        return ""
    keys = [k for k in ("model_id", "weights", "modality", "solver", "selection") if k in means.columns]
    rows, columns = by_setting(means, keys, "test_accuracy", "n_test", "reference_test_accuracy")
    return ("\n## The datasets side by side\n\nMean probe test accuracy over the object categories, two-object "
            "scenes, protocol authors; a dataset's heading names its paper A setting, and '(paper x)' is paper A's "
            "number for it.\n\n" + markdown_table(rows, columns))


def train_negatives_note(column: str) -> str:
    """What a table's column `column` (LABCLIP's train_negatives) says."""
    return (f"'{column}' says what a LABCLIP map trained on: the authors' map ('last_epoch') on every training "
            "item's hard negative as drawn, 'as drawn (k of N equal their caption)' counting the k 'negatives' that "
            "are the caption itself (CLEVR scenes with two equal colours, COCO captions whose noun and adjective "
            "shuffle drew the identity); the clean map ('best_val') from a second run, same seed and settings, "
            "without those items, 'distinct only (k of N dropped)' (with k = 0 one run gives both maps); SB uses no "
            "negatives, 'unused (SB)', and one run gives both its maps. Published maps: 'not counted (released)'.")


BINDING_PROTOCOLS = (
    "Protocol 'authors' is the authors' binding rule: on CLEVR-kind datasets the score is the L2-normalised image "
    "embedding . the raw (unnormalised) text embedding, a tie counts as correct and scenes whose hard negative binds "
    "as the caption (two equal colours) are left out; on other kinds (the authors' PUG rule) cosine, a tie counts "
    "as wrong, nothing left out. Protocol 'clean' scores by cosine, counts a tie half and leaves out items without "
    "a distinct negative. LABCLIP's text is L2-normalised, so for its rows the two scores coincide. Epoch selection "
    "of a LABCLIP map: 'last_epoch' (the authors') or 'best_val' (the epoch of best validation binding accuracy; "
    "'early_stopped' in place of 'last_epoch' where early stopping was configured). "
    + train_negatives_note("train negatives") + " "
    "Recall@k ranks candidate captions for each test image by the protocol's score, ties as in its accuracy "
    "('clean': at random); 'recall candidates' names the set, n its size. 'authors': the authors' pair labels of "
    "the whole vocabulary, not only the test split, ranking the two-object test images: on CLEVR every binding of "
    "two colour-shape pairs, one wording each (192 for 8 colours x 3 shapes; our wording follows the vocabulary's "
    "order, theirs the order of Python sets); on PUG:SPAR every ordered pair of objects with blue/red and "
    "grass/stone; on PUG:SPARE every ordered pair label, both word orders, the right one the caption's own, as "
    "their loader has it. 'clean': the test split's bindings, one wording each, so that a caption's two word orders "
    "never compete. Free-text captions (and, for 'authors', captions without attributes): the test split's "
    "distinct caption strings. Captions name a CLEVR scene's objects in scene order, so one binding comes in both "
    "word orders; the authors write one wording per set of pairs (in Python's set order): on hard synthetic "
    "embeddings that moved LABCLIP's binding accuracy by about 0.03, within the spread over seeds (measured once "
    "when issue #34 was filed). Probe-weight cosine: mean over "
    "probes and classes of the cosine between the image and the text probe's weight rows; 'authors' uses the probe "
    "rule's solver (SGD: last epoch, image and text probes from one seeded initialisation), 'clean' the unique "
    "minimiser of the l2-regularised multinomial logistic regression on raw embeddings, fitted on the training "
    "items and on seeded bootstrap resamples of them (mean +- sd over n_bootstrap resamples).")


def fine_tuned_with_hard_negatives(table: pd.DataFrame) -> pd.Series:
    """Rows of a model this workflow fine-tuned with hard negatives (paper A's "CLIP fine-tuned"), by its weights."""
    return table["weights"].astype(str).str.contains(r"fine-tuned from model \S+ with hard negatives", regex=True)


def binding_table(binding: pd.DataFrame) -> pd.DataFrame:
    """Binding rows with the paper's numbers beside the rows of its setting only: protocol authors on CLEVR-kind
    datasets, CLIP and LABCLIP-HNB with the last epoch kept (the paper's LABCLIP is HNB), and for a model fine-tuned
    here with hard negatives the paper's "CLIP fine-tuned" beside its CLIP rows (none beside its LABCLIP rows); the
    probe-weight cosine's only where the probes are the authors' too (SGD, last epoch)."""
    table = binding.assign(dataset_kind=_kind(binding), paper_setting=_setting(binding))
    table["reference_variant"] = table["variant"].where(~fine_tuned_with_hard_negatives(table),
                                                        table["variant"].map({"CLIP": "CLIP fine-tuned"}))
    reported = ((table["protocol"] == "authors") & table["paper_setting"].isin(list(reference.BINDING_ACCURACY))
                & (table["selection"] == table["reference_variant"].map(reference.REFERENCE_SELECTION)))
    table["reference_binding_accuracy"] = _paper_a_numbers(table, reference.BINDING_ACCURACY, "reference_variant",
                                                           reported)
    sgd = table["probe_weight_target"].astype(str).str.startswith("sgd last_epoch")  # the authors' probes
    table["reference_probe_weight_cosine"] = _paper_a_numbers(table, reference.PROBE_WEIGHT_COSINE,
                                                              "reference_variant", reported & sgd)
    reported &= table["reference_binding_accuracy"].notna()
    table["reference_source"] = [reference.source(s) if ok else "" for s, ok in zip(table["paper_setting"], reported)]
    return with_intervals(table, "binding")


def binding_markdown(table: pd.DataFrame) -> str:
    """Two tables, one row per (dataset, model, variant, selection), the two protocols side by side."""
    keys = [k for k in ("dataset", "model_id", "weights", "precision", "variant", "selection", "epoch")
            if k in table.columns]

    def share(row, column, count) -> str:
        if column not in row:
            return ""
        return counted_interval_text(row[column], row[column + LOW], row[column + HIGH], row[count])

    def spread(row) -> str:
        if not row or row.get("n_bootstrap", 0) == 0:
            return ""
        return (f"{row['probe_weight_cosine']:.3f} (bootstrap {row['probe_weight_cosine_boot_mean']:.3f} +- "
                f"{row['probe_weight_cosine_boot_sd']:.3f}, n={int(row['n_bootstrap'])})")

    def candidates(row) -> str:
        if not row:
            return ""
        if not isinstance(row.get("recall_candidates"), str):  # results of an older binding rule
            return "not recorded"
        return f"{row['recall_candidates']} (n={int(row['n_recall_captions'])})"

    accuracy, recall = [], []
    for key, group in table.groupby(keys, sort=False, dropna=False):
        by = {r["protocol"]: r for r in group.to_dict("records")}
        authors, clean = by.get("authors", {}), by.get("clean", {})
        head = dict(zip(keys, key))
        head["epoch"] = "" if pd.isna(head["epoch"]) else str(int(head["epoch"]))
        accuracy.append({**head, "binding (authors)": share(authors, "image_to_text_accuracy", "n_scored"),
                         "paper": authors.get("reference_binding_accuracy"),
                         "binding (clean)": share(clean, "image_to_text_accuracy", "n_scored"),
                         "text-to-image (authors)": share(authors, "text_to_image_accuracy", "n_twin_pairs"),
                         "text-to-image (clean)": share(clean, "text_to_image_accuracy", "n_twin_pairs"),
                         "same-binding test items": group["n_same_binding"].iloc[0],
                         "train negatives": group["train_negatives"].iloc[0] if "train_negatives" in group else None})
        recall.append({**head, **{f"R@{k} ({p})": share(r, f"recall_at_{k}", "n_recall_images")
                                  for k in (1, 5, 10) for p, r in (("authors", authors), ("clean", clean))},
                       **{f"recall candidates ({p})": candidates(r) for p, r in (("authors", authors),
                                                                                 ("clean", clean))},
                       "probe cosine (authors)": authors.get("probe_weight_cosine"),
                       "paper": authors.get("reference_probe_weight_cosine"),
                       "probe cosine (clean)": spread(clean),
                       "modality gap": group["modality_gap"].iloc[0],
                       "caption-negative cosine": clean.get("caption_negative_cosine")})
    columns = lambda rows: list(rows[0]) if rows else keys  # noqa: E731
    return ("# Cross-modal binding on the test split\n\nImage-to-text binding: an image is more similar to its "
            "caption than to the attribute-swapped caption (chance 0.5); n is the number of items scored. "
            "Text-to-image: a caption is more similar to its image than to the image of its swapped twin (pairs of "
            "items with a distinct negative; not in the authors' code). " + BINDING_PROTOCOLS + " " + PAPER_A_NOTE
            + " (CLIP and LABCLIP-HNB with the last epoch; the paper's LABCLIP is HNB, no reference for SB; beside "
            "the CLIP rows of a model fine-tuned here with hard negatives, the paper's 'CLIP fine-tuned', and none "
            "beside its LABCLIP rows); "
            + reference.UNCERTAIN + ".\n" + INTERVAL_NOTE + "\n" + RANDOM_NOTE + "\n\n"
            + markdown_table(accuracy, columns(accuracy))
            + "\n## Recall, probe-weight cosine and diagnostics\n\n" + markdown_table(recall, columns(recall))
            + binding_settings_markdown(table))


def binding_settings_markdown(table: pd.DataFrame) -> str:
    """Paper A's table: image-to-text binding accuracy per model, variant and selection, the datasets side by
    side, each protocol in its own rows."""
    keys = [k for k in ("model_id", "weights", "protocol", "variant", "selection") if k in table.columns]
    rows, columns = by_setting(table, keys, "image_to_text_accuracy", "n_scored", "reference_binding_accuracy")
    return ("\n## The datasets side by side\n\nImage-to-text binding accuracy on the test split; a dataset's "
            "heading names its paper A setting, and '(paper x)' is paper A's number for it (authors' protocol "
            "only).\n\n" + markdown_table(rows, columns))


def tor_table(tor: pd.DataFrame) -> pd.DataFrame:
    """TOR rows, with the paper's shares beside the rows of the authors' protocol whose setting is closest to the
    published one (4 names, whole short captions); which name list and which denominator they used is not known."""
    table = tor.copy()
    if "sampled" not in table.columns:  # results of an older TOR rule, which did not record it: not known complete
        table["sampled"], table["n_possible"] = True, np.nan
    table["captions"] = [caption_sample_text(n, possible, sampled) for n, possible, sampled
                         in zip(table["n_captions"], table["n_possible"], table["sampled"])]
    reported = ((table["protocol"] == "authors") & (table["n_objects"] == 4) & (table["method"] == "caption")
                & (table["template"] == "short") & ~table["sampled"].astype(bool))
    for position, share in reference.TOR_FIRST_RETRIEVED_SHARE.items():
        table[f"reference_first_retrieved_share_{position}"] = np.where(reported, share, np.nan)
    table["reference_source"] = np.where(reported, reference.PAPER_B_SOURCE, "")
    return with_intervals(table, "tor")


def caption_sample_text(n_captions, n_possible, sampled) -> str:
    """'all 3060' for an enumerated row, 'sampled 2000 of 8568' for a sampled one, '2000 (of how many not
    recorded)' for results that did not record it."""
    if n_possible != n_possible:  # NaN
        return f"{int(n_captions)} (of how many not recorded)"
    return f"sampled {int(n_captions)} of {int(n_possible)}" if sampled else f"all {int(n_captions)}"


def tor_markdown(table: pd.DataFrame) -> str:
    columns = (["dataset", "model_id", "weights", "precision", "protocol", "template", "n_objects", "method", "n_names",
                "captions", "top_n_accuracy"] + share_columns(table, "first_retrieved_share_")
               + ["reference_first_retrieved_share_1", "reference_first_retrieved_share_4", "n_top_n_correct"]
               + share_columns(table, "correct_first_retrieved_share_"))
    return ("# Text-based object retrieval\n\nOver each dataset's object names: share of captions whose most "
            "similar single-name text embedding is the name at each slot (a first-mention bias puts mass on slot 1), "
            "over all captions ('first_retrieved_share_p') and over the top-n-correct ones "
            "('correct_first_retrieved_share_p', n_top_n_correct of them). Protocol 'authors': one caption per "
            "combination of names in vocabulary order, so slot 1 always holds the name listed earliest (a "
            "confound), and top-n correct when each of the n nearest names is a substring of the caption. Protocol "
            "'clean': each combination in all its cyclic orders, so every name stands at every slot equally often "
            "(no bias gives 1/n per slot), and top-n correct when the n nearest names are exactly the caption's. "
            "Protocol 'size_order, large first|last' (names with a size category only, ours for COCO's names): "
            "one large and n - 1 small names, the same sets named with the large one first and last (top-n as "
            "'clean'); a first-slot share that stays high under 'large last' is an order bias, a share that follows "
            "the large name a size bias. 'long': the authors' long template. 'split-<how>' embeds each bare name "
            "alone and aggregates (the mitigation); 'split-authors_sum' is the authors' Sum (the L2-normalised "
            "single-name embeddings added). 'captions': 'all N' where every caption the protocol defines was "
            "embedded, as the authors' code does; 'sampled k of N' where paper_b.tor.captions_per_count sampled "
            "them (no published number stands beside a sampled row). References: "
            f"{reference.PAPER_B_SOURCE}; they stand beside the authors'-protocol rows, but which name list "
            "and which denominator (all or top-n-correct captions) they come from is not known."
            f"\n{INTERVAL_NOTE}\n{RANDOM_NOTE}\n\n" + markdown_table(table.to_dict("records"), columns))


def ior_table(ior: pd.DataFrame) -> pd.DataFrame:
    """IOR rows with the reference shares on the rows the paper reports: one large and three small objects, all
    large positions, ranked among the image's own objects as the authors' code ranks them."""
    table = ior.copy()
    reported = ((table["n_objects"] == 4) & (table["large_position"] == "all")
                & (table["ranked_among"] == "own_objects"))
    table["reference_large_first_share"] = np.where(reported, reference.IOR_LARGE_FIRST_SHARE, np.nan)
    for j, share in enumerate(reference.IOR_SMALL_FIRST_SHARE):
        table[f"reference_small_first_share_{j + 1}"] = np.where(reported, share, np.nan)
    table["reference_source"] = np.where(reported, reference.PAPER_B_IOR_SOURCE, "")
    return with_intervals(table, "ior")


def ior_markdown(table: pd.DataFrame) -> str:
    columns = (["dataset", "model_id", "weights", "precision", "ranked_among", "n_objects", "large_position",
                "n_images",
                "top_n_accuracy",
                "n_large_images", "large_first_share", "reference_large_first_share"]
               + share_columns(table, "small_first_share_"))
    return ("# Image-based object retrieval\n\nShare of multi-object images whose most similar single-object "
            "reference image is the large object, or each small object (in caption order). 'large_position' "
            "is the large object's position in the caption ('all': every image). 'ranked_among': 'own_objects' "
            "counts which of the image's own objects' references is nearest, as the authors' code does (the shares "
            "sum to 1, and the paper's numbers stand beside these rows); 'all_references' counts the nearest of all "
            "references, so an image whose nearest reference is an absent object counts for none. References: "
            f"{reference.PAPER_B_IOR_SOURCE}.\n{INTERVAL_NOTE}\n{RANDOM_NOTE}\n\n"
            + markdown_table(table.to_dict("records"), columns))


def matching_markdown(table: pd.DataFrame) -> str:
    columns = ["dataset", "model_id", "weights", "precision", "protocol", "n_objects", "condition",
               "large_position", "method", "accuracy", "n_pairs", "n_scenes"]
    return ("# Image-text matching under reordering and resizing\n\nShare of images more similar to their "
            "caption than to a distractor naming one other object (ties count half). 'original': the scene's "
            "caption; '<size> to first|last': the large or a small object moved to the caption's first or last "
            "slot (caption and distractor alike); 'large named <p>': scenes whose large object is the p-th "
            "named. 'split-<how>' embeds each object's name alone and aggregates (the mitigation). Protocol "
            "'authors': the authors' scenarios, one distractor per absent object, a tie counting as wrong: "
            "'authors 1: large first' (the large object swapped into the first slot, the distractor replacing it), "
            "'authors 2: large last' (the large object swapped into the last slot, the distractor naming it first "
            "and replacing the last object). The authors report one accuracy per position of the large object "
            "(one folder of scenes per position): 'large_position' p keeps the scenes whose large object is the "
            "p-th of the scene's object list; 'pooled' rows pool all positions (and, in protocol 'workflow', "
            "scenes of any layout; its 'large named <p>' rows are position p). 'n_scenes': the images behind a "
            "row. The intervals treat pairs as independent, although in the authors' scenarios each scene "
            "contributes one pair per absent class, so they are likely too narrow. "
            "REFERENCE.md gives no number for this measure.\n" + INTERVAL_NOTE + "\n" + RANDOM_NOTE + "\n\n"
            + markdown_table(table.to_dict("records"), columns))


def matching_table(matching: pd.DataFrame) -> pd.DataFrame:
    return with_intervals(matching, "matching")


def compositional_table(compositional: pd.DataFrame) -> pd.DataFrame:
    """Per subset rows, with paper A's CLIP ViT-B/32 accuracy beside the authors'-protocol CLIP rows of SugarCrepe's
    subsets it reports (replace_att, swap_att)."""
    table = compositional.assign(dataset_kind=_kind(compositional))
    for column, value in (("variant", "CLIP"), ("measure", "image-to-text")):
        if column not in table.columns:
            table.insert(0, column, value)
    if "scoring" not in table.columns:
        table["scoring"] = table["dataset_kind"]
    authors_clip = ((table["protocol"] == "authors") & (table["variant"] == "CLIP")
                    & (table["measure"] == "image-to-text"))
    reported = authors_clip & (table["scoring"] == "sugarcrepe") & table["subset"].isin(list(reference.SUGARCREPE_ACCURACY))
    aro = authors_clip & (table["subset"] == "macro (ARO)") & table["scoring"].isin(list(reference.ARO_MACRO_ACCURACY))
    table["reference_accuracy"] = (table["subset"].map(reference.SUGARCREPE_ACCURACY).where(reported)
                                   .fillna(table["scoring"].map(lambda s: reference.ARO_MACRO_ACCURACY.get(s, {})
                                                                .get("CLIP")).where(aro)))
    table["reference_source"] = np.where(reported, reference.SUGARCREPE_SOURCE,
                                         np.where(aro, reference.REAL_WORLD_SOURCE, ""))
    if "n_subsets" in table.columns:  # counted on macro and mean-over-draws rows only
        table["n_subsets"] = table["n_subsets"].astype("Int64")
    return with_intervals(table, "compositional")


def compositional_markdown(table: pd.DataFrame) -> str:
    columns = ["dataset", "model_id", "weights", "precision", "activation", "scoring", "variant", "selection", "measure",
               "protocol", "subset", "accuracy", "n_items", "n_subsets", "n_ties", "reference_accuracy"]
    # ARO's Visual Genome sets have hundreds of relations and attribute pairs: the CSV has them, this shows the totals
    shown = table[~table["scoring"].isin(["aro_relation", "aro_attribution"])
                  | table["subset"].isin(["all", "macro (ARO)"])]
    return ("# Compositional benchmarks: image-to-text accuracy\n\nShare of images more similar (cosine) to their "
            "caption than to every negative caption, per subset, for CLIP, for CLIP with the LABCLIP maps trained "
            "here on the datasets of paper_a.labclip_transfer ('LABCLIP-<mode> (<dataset>)'; selection: last epoch, "
            "the authors' choice, or best validation epoch) and with each published LABCLIP map that fits it "
            "('published:<name>'). Protocol 'authors': each benchmark as its authors' code scores "
            "it (column scoring): SugarCrepe and ARO's VG-Relation and VG-Attribution count a tie as wrong, ARO's "
            "COCO- and Flickr-Order (four perturbed captions against the caption) count a tie for the caption; "
            "'clean': a tie is shared (1/(1 + the negatives tied)). n_ties counts the items with a tie. "
            "SugarCrepe: 'family: <f>' pools the items of the subsets named <f>_..., 'all' pools every item "
            "(micro-average, as SugarCrepe reports). ARO VG-Relation and VG-Attribution: 'macro (ARO)' is the mean "
            "of the per-relation (per attribute pair) accuracies that ARO reports, without the symmetric relations "
            "(VG-Relation) or over the pairs of at least 25 items (VG-Attribution), n_subsets of them, its interval "
            "from their Agresti-Coull variances; 'all' is the micro-average; the CSV has every relation and pair. "
            "ARO Order sets: 'draw <d>' is one draw of the perturbations, 'mean over draws' their mean (n_items: the "
            "items of one draw). Winoground (measures text, image, group; n_items counts examples, each two images "
            "and two captions): text, each image more similar to its own caption than to the other; image, each "
            "caption more similar to its own image than to the other; group, both; strictly greater, as its "
            "authors score them; subset is the example's collapsed tag. SugarCrepe++ (n_items counts entries, each one "
            "image, two captions and a negative; strictly greater, as its evaluation scripts count them): "
            "image-to-text, both captions more similar to the image than the negative; 'caption 1', 'caption 2', "
            "each alone; text-only, the two captions more similar to each other than either to the negative. "
            f"'reference_accuracy': {reference.SUGARCREPE_SOURCE} and {reference.REAL_WORLD_SOURCE}, beside the "
            f"authors'-protocol CLIP rows they report; {reference.UNCERTAIN}.\n" + INTERVAL_NOTE + "\n"
            + RANDOM_NOTE + "\n\n" + markdown_table(shown.to_dict("records"), [c for c in columns if c in shown.columns]))


def recall_table(recall: pd.DataFrame) -> pd.DataFrame:
    """Recall@K rows, with paper A's CLIP ViT-B/32 COCO text-to-image R@1 beside the CLIP row it reports."""
    table = recall.assign(dataset_kind=_kind(recall))
    reported = (table["variant"] == "CLIP") & (table["direction"] == "text-to-image") & (table["k"] == 1)
    table["reference_recall"] = np.where(reported, reference.COCO_TEXT_TO_IMAGE_R1["CLIP"], np.nan)
    table["reference_source"] = np.where(reported, reference.REAL_WORLD_SOURCE, "")
    return with_intervals(table, "recall")


def recall_markdown(table: pd.DataFrame) -> str:
    columns = ["dataset", "model_id", "weights", "precision", "activation", "variant", "selection", "train_negatives",
               "direction", "k", "recall", "n_queries", "reference_recall"]
    return ("# Retrieval: Recall@K on the test split\n\ntext-to-image: share of captions whose image is among the K "
            "images most similar to it; image-to-text: share of images with one of their captions among the K "
            "captions most similar to it (cosine; a tie is broken in the right one's favour). Variants: CLIP, CLIP "
            "with this dataset's LABCLIP maps (last epoch, the authors' choice, and best validation epoch), and "
            "with each published map that fits the model. " + train_negatives_note("train_negatives")
            + " 'reference_recall': "
            f"{reference.REAL_WORLD_SOURCE}, on Karpathy's 5k test images; a COCO dataset without `karpathy` is "
            f"tested on images drawn from val2014 instead; {reference.UNCERTAIN}.\n" + INTERVAL_NOTE + "\n"
            + RANDOM_NOTE + "\n\n" + markdown_table(table.to_dict("records"), [c for c in columns if c in table.columns]))


# Paper A's real-world table: benchmark -> (source table, the rows it keeps, the share's column, its count's column)
AUTHORS_IMAGE_TO_TEXT = {"protocol": "authors", "measure": "image-to-text"}
REAL_WORLD_MEASURES = {
    "ARO VG-Attribution": ("compositional", {**AUTHORS_IMAGE_TO_TEXT, "scoring": "aro_attribution",
                                             "subset": "macro (ARO)"}, "accuracy", "n_items"),
    "ARO VG-Relation": ("compositional", {**AUTHORS_IMAGE_TO_TEXT, "scoring": "aro_relation",
                                          "subset": "macro (ARO)"}, "accuracy", "n_items"),
    "SugarCrepe replace-att": ("compositional", {**AUTHORS_IMAGE_TO_TEXT, "scoring": "sugarcrepe",
                                                 "subset": "replace_att"}, "accuracy", "n_items"),
    "SugarCrepe swap-att": ("compositional", {**AUTHORS_IMAGE_TO_TEXT, "scoring": "sugarcrepe",
                                              "subset": "swap_att"}, "accuracy", "n_items"),
    "COCO text-to-image R@1": ("recall", {"direction": "text-to-image", "k": 1}, "recall", "n_queries"),
}
REAL_WORLD_COLUMNS = ["benchmark", "dataset", "model_id", "weights", "precision", "activation", "variant", "selection",
                      "train_negatives",
                      "share", "share_low95", "share_high95", "n", "paper_model", "reference"]


def paper_model_of(model_id: str, variant: str, selection: str, paper_models: dict) -> str:
    """The paper A model whose real-world numbers a row stands beside: the model's own (`paper_model` of its entry,
    CLIP by default; NegCLIP for the NegCLIP checkpoint) for CLIP rows; LABCLIP for an HNB map trained here kept at
    its last epoch (the authors' procedure) and for a published map trained on COCO; '' for the rest."""
    if variant == "CLIP":
        return paper_models.get(model_id, "CLIP")
    if variant.startswith("LABCLIP-HNB") and selection == "last_epoch":
        return "LABCLIP"
    if variant.startswith("published:") and "coco" in variant.lower():
        return "LABCLIP"
    return ""


def real_world_table(tables: dict[str, pd.DataFrame], paper_models: dict[str, str]) -> pd.DataFrame:
    """One row per benchmark of paper A's real-world table, model and variant, from the compositional and recall
    tables (authors' protocols), with the paper's number for the row's paper model beside it."""
    frames = []
    for benchmark, (source, where, share, count) in REAL_WORLD_MEASURES.items():
        table = tables.get(source)
        if table is None or table.empty:
            continue
        keep = np.ones(len(table), bool)
        for column, value in where.items():
            keep &= (table[column] == value).to_numpy() if column in table.columns else False
        rows = table[keep].rename(columns={share: "share", share + LOW: "share_low95", share + HIGH: "share_high95",
                                           count: "n"})
        frames.append(rows.assign(benchmark=benchmark))
    if not frames:
        return pd.DataFrame(columns=REAL_WORLD_COLUMNS)
    table = pd.concat(frames, ignore_index=True)
    for column in ("selection", "activation", "precision", "train_negatives"):
        if column not in table.columns:
            table[column] = ""
    table["selection"] = table["selection"].fillna("none")
    table["train_negatives"] = table["train_negatives"].fillna("")
    table["paper_model"] = [paper_model_of(m, v, s, paper_models)
                            for m, v, s in zip(table["model_id"], table["variant"], table["selection"])]
    table["reference"] = [reference.REAL_WORLD_TABLE[b].get(p, np.nan)
                          for b, p in zip(table["benchmark"], table["paper_model"])]
    return table[REAL_WORLD_COLUMNS]


def real_world_markdown(table: pd.DataFrame) -> str:
    columns = ["benchmark", "dataset", "model_id", "weights", "precision", "activation", "variant", "selection",
               "train_negatives", "share", "n", "paper_model", "reference"]
    return ("# Paper A's real-world table\n\nEach benchmark as its authors score it (protocol 'authors'): ARO's "
            "VG-Attribution and VG-Relation macro-averages, SugarCrepe's replace-att and swap-att image-to-text "
            "accuracy, COCO's text-to-image Recall@1 (compositional.md and recall.md have every subset, protocol "
            "and variant). 'reference': " + reference.REAL_WORLD_SOURCE + ", for 'paper_model': a model's CLIP "
            "rows stand beside paper A's CLIP (or the model entry's paper_model, e.g. NegCLIP), an HNB map "
            "trained here and kept at its last epoch, and a published COCO map, beside its LABCLIP; "
            "'train_negatives': what a map trained on (recall.md says more); "
            f"{reference.UNCERTAIN}.\n" + INTERVAL_NOTE + "\n" + RANDOM_NOTE + "\n\n"
            + markdown_table(table.to_dict("records"), columns))


# The progression's measures: (source table, the rows it keeps, the share, the column counting its items, whether
# 1/n_objects is what a CLIP without the bias gives).
PROGRESSION_MEASURES = {
    "TOR first-named share (clean)": ("tor", {"protocol": "clean", "template": "short", "method": "caption"},
                                      "first_retrieved_share_1", "n_captions", True),
    "TOR first-named share (authors)": ("tor", {"protocol": "authors", "template": "short", "method": "caption"},
                                        "first_retrieved_share_1", "n_captions", False),
    "IOR large-object share": ("ior", {"ranked_among": "own_objects", "large_position": "all"},
                               "large_first_share", "n_large_images", True),
}
RUN_COLUMNS = ["run", "train_dataset", "caption_order", "init", "hard_negatives", "seed", "step", "steps"]
STATUS_COLUMNS = ["training", "start_loss", "final_loss", "lowest_loss",  # summary.runs.training_status
                  "heldout", "heldout_loss", "heldout_chance"]  # and heldout_status


def progression_table(tables: dict[str, pd.DataFrame], trained: dict[str, dict]) -> pd.DataFrame:
    """One row per checkpoint of a CLIP trained here (its model entry), measure and object count: TOR's share of
    short captions whose nearest name is the first-named one, and IOR's share of images whose nearest own-object
    reference is the large object, with their counts and chance."""
    frames = []
    for measure, (source, keep, share, count, has_chance) in PROGRESSION_MEASURES.items():
        if source not in tables:
            continue
        rows = tables[source]
        rows = rows[rows["model_id"].isin(trained)]
        for column, value in keep.items():
            rows = rows[rows[column].astype(str) == value]
        frame = rows[["model_id", "weights", "precision", "dataset", "n_objects"]].copy()
        frame.insert(0, "measure", measure)
        frame["share"], frame["n"] = rows[share].to_numpy(), rows[count].to_numpy()
        frame["chance"] = 1 / frame["n_objects"] if has_chance else np.nan
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    runs = pd.DataFrame.from_dict(trained, orient="index")[RUN_COLUMNS]
    table = runs.join(table.set_index("model_id"), how="inner").rename_axis("model_id").reset_index()
    status = (run_statuses(tables["runs"], tables.get("heldout")) if "runs" in tables
              else pd.DataFrame(columns=STATUS_COLUMNS))
    table = table.join(status[STATUS_COLUMNS], on="run")
    table["training"] = table["training"].fillna("not recorded")
    table["heldout"] = table["heldout"].fillna("not measured")
    order = list(PROGRESSION_MEASURES)
    table = table.sort_values(["measure", "dataset", "n_objects", "run", "step"],
                              key=lambda c: c.map(order.index) if c.name == "measure" else c, ignore_index=True)
    return with_intervals(table[["measure", *RUN_COLUMNS, *STATUS_COLUMNS, "model_id", "weights", "precision",
                                 "dataset", "n_objects", "share", "n", "chance"]], "training_progression")


def progression_markdown(table: pd.DataFrame) -> str:
    columns = ["measure", "dataset", "n_objects", "run", "caption_order", "seed", "training", "heldout", "step",
               "steps", "weights", "precision", "share", "n", "chance"]
    return ("# Training progression of the CLIPs trained in the workflow\n\nPer saved checkpoint (step 0: the "
            "initialisation): 'TOR first-named share', the share of short captions (method caption) whose most "
            "similar single name is the first-named one, under the clean protocol (every name at every slot "
            "equally often: no first-mention bias gives 1/n) and the authors' (names in vocabulary order, a "
            "confound); 'IOR large-object share', the share of one-large-object images whose most similar reference "
            "among their own objects' is the large object (large_position all; no size bias gives 1/n). n: captions "
            "or images. 'training': 'diverged' where a run's loss was not finite or its mean over the last tenth of "
            "its steps was not below the mean over the first tenth ('converged' otherwise; the CSV has both losses "
            "and the lowest); 'heldout': whether the run's contrastive loss on held-out items (its training "
            "datasets' val split) at its last checkpoint is below chance, ln(batch size), the loss of a CLIP that has "
            "learnt nothing ('not below chance': it memorised its training pairs; the CSV has the loss and chance). "
            "Either kind of run is reported, never dropped. Paper B's figure 4c draws these for one "
            "published CLIP; no public code computes them.\n"
            f"{INTERVAL_NOTE}\n\n" + markdown_table(table.to_dict("records"), columns))


# Student's t 97.5% quantiles by degrees of freedom (the analysis env has no scipy).
T975 = {1: 12.706, 2: 4.303, 3: 3.182, 4: 2.776, 5: 2.571, 6: 2.447, 7: 2.365, 8: 2.306, 9: 2.262, 10: 2.228,
        11: 2.201, 12: 2.179, 13: 2.160, 14: 2.145, 15: 2.131, 16: 2.120, 17: 2.110, 18: 2.101, 19: 2.093,
        20: 2.086, 21: 2.080, 22: 2.074, 23: 2.069, 24: 2.064, 25: 2.060, 26: 2.056, 27: 2.052, 28: 2.048,
        29: 2.045, 30: 2.042}


def t975(df: int) -> float:
    """Student's t 97.5% quantile: tabulated up to 30 degrees of freedom, beyond by the Cornish-Fisher expansion
    in 1/df around the normal quantile (within 1e-3 of the exact value there)."""
    if df in T975:
        return T975[df]
    z = Z95
    return z + (z ** 3 + z) / (4 * df) + (5 * z ** 5 + 16 * z ** 3 + 3 * z) / (96 * df ** 2)


def t_interval(values) -> tuple[float, float, float]:
    """(mean, low, high): the mean of the finite values with its 95% t-interval (n - 1 degrees of freedom; NaN
    bounds with fewer than 2 values)."""
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    n, mean = len(values), float(values.mean()) if len(values) else np.nan
    half = t975(n - 1) * values.std(ddof=1) / np.sqrt(n) if n > 1 else np.nan
    return mean, mean - half, mean + half


def flagged_seeds(runs: pd.DataFrame, column: str, flag: str) -> str:
    """'seed 1 seed 3': the seeds of `runs` whose `column` says `flag` ('none' when none does or no column)."""
    flagged = runs[runs[column] == flag] if column in runs else runs.iloc[:0]
    return " ".join(f"seed {seed}" for seed in flagged["seed"]) or "none"


ARM_COLUMNS = ["train_dataset", "caption_order", "init", "hard_negatives", "steps", "precision"]


def caption_order_table(tables: dict[str, pd.DataFrame], trained=None) -> pd.DataFrame:
    """The last checkpoints of the progression grouped by the run settings that are not the seed: per caption
    order, measure and object count, the seeds' mean share, its standard deviation over seeds and the 95%
    t-interval of the mean (n_runs - 1 degrees of freedom; cut to [0, 1], as a share), with each run's share and its
    Wilson interval."""
    last = tables["training_progression"]
    last = last[last["step"] == last["steps"]]
    groups = []
    for key, runs in last.groupby(["measure", "dataset", "n_objects", *ARM_COLUMNS], sort=False, dropna=False):
        runs = runs.sort_values("seed")
        n_runs, (mean, low, high) = len(runs), t_interval(runs["share"])
        sd = runs["share"].std(ddof=1) if n_runs > 1 else np.nan
        groups.append({**dict(zip(["measure", "dataset", "n_objects", *ARM_COLUMNS], key)), "n_runs": n_runs,
                       "diverged_runs": flagged_seeds(runs, "training", "diverged"),
                       "heldout_not_below_chance": flagged_seeds(runs, "heldout", "not below chance"),
                       "seeds": " ".join(str(s) for s in runs["seed"]), "mean_share": mean, "sd_over_seeds": sd,
                       "mean_low95": max(low, 0.0), "mean_high95": min(high, 1.0),
                       "chance": runs["chance"].iloc[0],
                       "runs": "; ".join(f"seed {r.seed}: " + counted_interval_text(r.share, r.share_low95,
                                                                                   r.share_high95, r.n)
                                         for r in runs.itertuples())})
    return pd.DataFrame(groups)


def caption_order_markdown(table: pd.DataFrame) -> str:
    rows = table.assign(mean_share=[
        interval_text(m, lo, hi) if n > 1 else f"{m:.3f}"
        for m, lo, hi, n in zip(table["mean_share"], table["mean_low95"], table["mean_high95"], table["n_runs"])])
    columns = ["measure", "dataset", "n_objects", "caption_order", "train_dataset", "steps", "precision", "n_runs",
               "diverged_runs", "heldout_not_below_chance", "mean_share", "sd_over_seeds", "chance", "runs"]
    return ("# Caption order of the training captions: the last checkpoints over seeds\n\nPaper B's explanation "
            "of the biases, tested: CLIPs trained in the workflow that differ only in the order their training "
            "captions name the objects (large_first: the large object named first; large_last: named last; random: "
            "a seeded random order per item) and in the seed. Per order: the mean over seeds of each run's last-checkpoint share (measures "
            "as in training_progression.md) with the 95% t-interval of that mean (n_runs - 1 degrees of freedom) "
            "and the standard deviation over seeds; 'runs': each seed's share with its 95% Wilson interval and its "
            "count; 'diverged_runs': the seeds whose training diverged (training_progression.md says how that is "
            "decided), kept in the mean; 'heldout_not_below_chance': the seeds whose held-out loss ended at or "
            "above chance (training_progression.md), also kept. Weights: CLIPs trained in this workflow on "
            "synthetic scenes, each run's last checkpoint (training_progression.md names each checkpoint's weights "
            "file). Paper B predicts a TOR first-named share above chance under large_first and not under random.\n\n"
            + markdown_table(rows.to_dict("records"), columns))


ORDER_PAIRS_FIRST = ["large_first", "large_last", "random", "as_generated"]  # each pair: the earlier minus the later


def caption_order_difference_table(tables: dict[str, pd.DataFrame], trained=None) -> pd.DataFrame:
    """Per measure, dataset and object count, each pair of caption orders whose other run settings agree: the
    difference of their seeds' mean last-checkpoint shares with its 95% Welch t-interval (scipy's
    ttest_ind(equal_var=False): the seeds of each order as independent samples; NaN bounds with fewer than 2 seeds
    in an order)."""
    from scipy.stats import ttest_ind

    last = tables["training_progression"]
    last = last[last["step"] == last["steps"]]
    keys, rows = ["measure", "dataset", "n_objects", *[c for c in ARM_COLUMNS if c != "caption_order"]], []
    for key, runs in last.groupby(keys, sort=False, dropna=False):
        shares = {order: runs.loc[runs["caption_order"] == order, "share"].dropna().to_numpy()
                  for order in sorted(set(runs["caption_order"]), key=ORDER_PAIRS_FIRST.index)}
        orders = list(shares)
        for i, first in enumerate(orders):
            for second in orders[i + 1:]:
                a, b = shares[first], shares[second]
                low = high = np.nan
                if len(a) > 1 and len(b) > 1:
                    low, high = ttest_ind(a, b, equal_var=False).confidence_interval(0.95)
                rows.append({**dict(zip(keys, key)), "orders": f"{first} - {second}", "n_seeds": f"{len(a)}, {len(b)}",
                             "mean_first": a.mean(), "mean_second": b.mean(), "difference": a.mean() - b.mean(),
                             "difference_low95": low, "difference_high95": high})
    return pd.DataFrame(rows)


def caption_order_difference_markdown(table: pd.DataFrame) -> str:
    rows = table  # markdown_table writes each difference with its interval
    columns = ["measure", "dataset", "n_objects", "orders", "train_dataset", "steps", "precision", "n_seeds",
               "mean_first", "mean_second", "difference"]
    return ("# Caption order: the difference between orders\n\nThe data-order experiment's answer: for each pair of "
            "caption orders (runs alike in every other setting), the mean over seeds of the first order's "
            "last-checkpoint share minus the second's (measures as in training_progression.md), with the 95% "
            "Welch t-interval of that difference (each order's seeds an independent sample; n_seeds: the seeds "
            "of each). Weights: CLIPs trained in this workflow on synthetic scenes, each run's last checkpoint "
            "(training_progression.md names each checkpoint's weights file); precision as in the column. Paper B's "
            "explanation predicts a TOR first-named share higher under large_first than under random or "
            "large_last; an interval that excludes 0 is a difference the seeds resolve.\n\n"
            + markdown_table(rows.to_dict("records"), columns))


def architecture_text(settings: dict) -> str:
    """A run's model in a few words: 'ViT 64px/8 192x4, text 128x4, embed 128' (or its init's for fine-tuning)."""
    if "init" in settings:
        return f"fine-tuned from {settings['init']}"
    a = settings["architecture"]
    return (f"ViT {a['image_size']}px/{a['patch_size']} {a['vision_width']}x{a['vision_layers']}, "
            f"text {a['text_width']}x{a['text_layers']}, embed {a['embed_dim']}")


def clip_selection_table(tables: dict[str, pd.DataFrame], selection: dict) -> pd.DataFrame:
    """One row per candidate run of clip_selection at its last checkpoint: its recipe, its training's status, its
    held-out loss and recall@1 both ways (with Wilson intervals over the held-out items), the criterion's value,
    rank and whether it is the selected run (summary.runs.select_run)."""
    candidates, settings = selection["candidates"], selection["settings"]
    _, rows = select_run(tables["heldout"], candidates, selection["criterion"])
    status = run_statuses(tables["runs"]).reindex(candidates)
    rows = rows.join(status[["training", "final_loss"]], on="run")
    recipe = pd.DataFrame([{"run": run, "model": architecture_text(settings[run]), "steps": settings[run]["steps"],
                            "batch_size": settings[run]["batch_size"], "lr": settings[run]["lr"],
                            "warmup_steps": settings[run]["warmup_steps"], "grad_clip": settings[run].get("grad_clip"),
                            "seed": settings[run]["seed"], "caption_order": settings[run]["caption_order"]}
                           for run in candidates])
    table = recipe.merge(rows.rename(columns={"loss": "heldout_loss", "items": "heldout_items",
                                              "batch_size": "heldout_batch_size", "final_loss": "final_train_loss"}),
                         on="run")
    for share in ("image_to_text_r1", "text_to_image_r1"):
        low, high = wilson_interval(table[share], table["heldout_items"])
        table.insert(table.columns.get_loc(share) + 1, share + LOW, low)
        table.insert(table.columns.get_loc(share) + 2, share + HIGH, high)
    return table.drop(columns=["mean_r1", "heldout_items_digest", "batches"])


def clip_selection_markdown(table: pd.DataFrame) -> str:
    rows = table.assign(**{share: [counted_interval_text(v, lo, hi, n) for v, lo, hi, n in zip(
        table[share], table[share + LOW], table[share + HIGH], table["heldout_items"])]
        for share in ("image_to_text_r1", "text_to_image_r1")}, selected=table["selected"].map({True: "**yes**",
                                                                                                 False: ""}),
        lr=table["lr"].map("{:g}".format))
    rows = rows.drop(columns=[c for c in rows.columns if c.endswith((LOW, HIGH))])  # in the text above
    columns = ["run", "selected", "criterion_value", "rank", "model", "steps", "batch_size", "lr", "warmup_steps",
               "grad_clip", "seed", "training", "final_train_loss", "step", "heldout_loss", "heldout_batch_size",
               "image_to_text_r1", "text_to_image_r1"]
    criterion = table["criterion"].iloc[0]
    return ("# Which CLIP trained here is studied: the selection\n\nCandidates compared at their last checkpoint on "
            "the val split of their training datasets, which no run trains on, by a criterion that is none of the "
            f"papers' measures: **{criterion}** (heldout_loss: the lowest contrastive loss over consecutive batches "
            "of heldout_batch_size val items; heldout_recall: the highest mean of the two recall@1 columns). "
            "Recall@1: the share of val images whose most similar val caption is theirs word for word (image to "
            "text), and of val captions whose most similar val image has that caption (text to image), with the "
            "95% Wilson interval and the count. 'training': the run's convergence flag (training_progression.md). "
            "The binding, LABCLIP, TOR and IOR results of every candidate stay in the papers' tables; none of them "
            "enters the choice.\n\n" + markdown_table(rows.to_dict("records"), columns))


def mention_order_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The caption-order statistic's rows with their bootstrap intervals (the analysis gives them)."""
    return with_intervals(rows, "mention_order")


def mention_order_markdown(table: pd.DataFrame) -> str:
    columns = ["dataset", "protocol", "method", "areas", "area_model", "precision", "measure", "n_objects", "position",
               "share", "chance", "n_captions", "n_images", "n_tied"]
    return ("# Where captions name their largest object\n\nAmong captions naming k >= 2 objects that have an area "
            "(areas: ground-truth annotations by mask or box, or the detector's largest box for the object's phrase "
            "and the segmenter's mask in it), the share whose largest object stands at each position of the "
            "caption; a random order gives 1/k ('chance'; over all k, the mean of 1/k). 'largest annotated object "
            "named': the share of captions naming the image's largest annotated object at all. Methods: 'lexicon' "
            "(COCO's categories, deterministic), 'noun_phrases' (spaCy's noun chunks, deterministic), 'llm' (the "
            "authors' way, sampled). Protocol 'authors': the LLM's objects with the detector's (and segmenter's) "
            "areas, as the authors measured LAION; 'workflow': the rest. Paper B reports this statistic for LAION only as a figure (its figure 4b), so "
            "no reference number stands beside these rows. Shares show their 95% bootstrap interval over images "
            "(a caption's image resampled with it), widened where needed to the Wilson interval that counts each "
            "image once; the n columns say of how many captions and images each is a "
            "share; n_tied captions had two objects of equal largest area and are left out.\n\n"
            + markdown_table(table.to_dict("records"), columns))


def objects_per_caption_table(rows: pd.DataFrame) -> pd.DataFrame:
    return with_intervals(rows, "objects_per_caption")


def objects_per_caption_markdown(table: pd.DataFrame) -> str:
    columns = ["dataset", "method", "objects_named", "share", "n_captions", "mean_objects_named"]
    return ("# How many objects captions name\n\nShare of captions naming each number of distinct objects, by "
            "method (text only: no image is read). Paper B's statistic needs two or more.\n"
            f"{INTERVAL_NOTE}\n\n" + markdown_table(table.to_dict("records"), columns))


def slot_classification_table(rows: pd.DataFrame) -> pd.DataFrame:
    return with_intervals(rows, "slot_classification")


def slot_classification_markdown(table: pd.DataFrame) -> str:
    columns = ["dataset", "model_id", "weights", "precision", "task", "slot_order", "slot", "test_accuracy",
               "n_test", "chance", "n_train", "chosen"]
    return ("# Object classification by slot\n\nPaper B's IOC and TOC, in our reading (the authors published no "
            "code for them): per slot, a linear head (scikit-learn's LogisticRegression, C chosen on the validation "
            "split) names the object in that slot from the frozen embedding. TOC: the caption's text embedding, slot "
            "k the object named k-th. IOC: the image embedding, slot k the k-th largest object (one-large scenes: slot "
            "1 is the large object). Trained on the train split over every item that has the slot (all object counts "
            "pooled), accuracy on test; chance is 1 / the object names in the training rows. The paper gives no "
            f"number for these.\n{INTERVAL_NOTE}\n{RANDOM_NOTE}\n\n" + markdown_table(table.to_dict("records"), columns))


def caption_tor_table(rows: pd.DataFrame) -> pd.DataFrame:
    return with_intervals(rows, "caption_tor")


def caption_tor_markdown(table: pd.DataFrame) -> str:
    columns = ["dataset", "model_id", "weights", "precision", "reading", "candidates", "n_objects", "n_captions",
               *share_columns(table, "first_retrieved_share_"), "chance", "top_n_accuracy", "not_mentioned_share"]
    return ("# Text-based object retrieval on real captions\n\nCaptions naming 2..5 COCO categories (the lexicon's "
            "objects, each at its first mention): the share whose nearest bare category name (cosine of text "
            "embeddings) stands at each slot of the caption. 'as written': the captions themselves, as the authors "
            "ran TOR on COCO's; real captions tend to name their main object first, so slot 1's share mixes the "
            "encoder's order bias with the captions' order. 'rotated': each caption with its object phrases rotated "
            "through the slots (every object at every slot once), the variant without that confound: no order bias "
            "gives 1/n ('chance'). 'own objects': the nearest of the caption's own categories; 'all names': the "
            "nearest of all 80, a category the caption does not name counting for no slot (not_mentioned_share), and "
            "top-n correct when the n nearest are exactly the caption's. The paper gives these only as a figure.\n"
            f"{INTERVAL_NOTE}\n{RANDOM_NOTE}\n\n" + markdown_table(table.to_dict("records"), columns))


def prompt_order_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The prompt-order summary rows (rule prompt_order gives their intervals)."""
    return with_intervals(rows, "prompt_order")


def prompt_order_markdown(table: pd.DataFrame) -> str:
    columns = ["dataset", "model_id", "weights", "precision", "measure", "n_objects", "share", "chance", "n_images",
               "n_undecided", *share_columns(table, "share_position_")]
    return ("# Prompt order in text-to-image generation\n\nPaper B's question for Stable Diffusion, in our reading "
            "(the authors published no code for it): prompts name a set of objects in each of its rotations, several "
            "seeds each; 'share': the share of images whose first-named object is the most prominent one, "
            "'share_position_p' the share whose most prominent object is named p-th; chance 1/n. Measures: "
            "'detector', the object with the largest box of the caption-order detector (no box: not shown); 'clip', "
            "the most probable of the named objects under CLIP zero-shot (no threshold: some object always wins). "
            "n_undecided images had no single most prominent object and are left out. The rotations and seeds of "
            "one set count as separate images in the intervals. 'model_id' and 'weights': the text-to-image "
            f"model's. The paper gives no number for this.\n{INTERVAL_NOTE}\n{RANDOM_NOTE}\n\n"
            + markdown_table(table.to_dict("records"), columns))


ATTENTION_KEYS = ["dataset", "model_id", "weights", "precision", "layers"]
ATTENTION_MEASURES = {"attention_share": "attention share", "attention_per_area": "attention per unit area",
                      "area_share": "area share"}
MOST_ATTENTION = "images where the large object draws the most"


def mean_with_interval(values) -> dict:
    """The mean of per-image values with its 95% t-interval (t_interval) and their count."""
    mean, low, high = t_interval(values)
    return {"value": mean, "value_low95": low, "value_high95": high, "n_images": int(np.isfinite(values).sum())}


def attention_table(rows: pd.DataFrame) -> pd.DataFrame:
    """The attention analysis' per-object rows summarised over the images with exactly one large object, per
    dataset, model and object count (and over all counts, 'all'): each measure's mean over images for the large
    object and for a small one (per image, the mean over its small objects), with 95% t-intervals; and the share of
    images whose large object has the highest attention share, and the highest attention per unit area (95%
    Wilson intervals; chance 1 / the object count)."""
    one_large = rows[rows["n_large"] == 1]
    out = []
    for key, group in one_large.groupby(ATTENTION_KEYS, sort=False):
        for n_objects in ["all", *sorted(group["n_objects"].unique())]:
            objects = group if n_objects == "all" else group[group["n_objects"] == n_objects]
            base = {**dict(zip(ATTENTION_KEYS, key)), "n_objects": str(n_objects)}
            large = objects[objects["size"] == "large"].set_index("item_id")
            small = objects[objects["size"] == "small"].groupby("item_id").mean(numeric_only=True)
            for column, measure in ATTENTION_MEASURES.items():
                for role, values in (("large", large[column]), ("a small one", small[column])):
                    out.append({**base, "measure": measure, "object": role, **mean_with_interval(values),
                                "chance": np.nan})
            for column, how in (("attention_share", "attention"), ("attention_per_area", "attention per unit area")):
                shown = objects.dropna(subset=[column])
                top = shown.loc[shown.groupby("item_id", sort=False)[column].idxmax()]
                winner = (top["size"] == "large").astype(float)
                low, high = wilson_interval(winner.mean(), len(winner))
                out.append({**base, "measure": f"{MOST_ATTENTION} {how}", "object": "large",
                            "value": winner.mean(), "value_low95": float(low), "value_high95": float(high),
                            "n_images": len(winner), "chance": float((1 / top["n_objects"]).mean())})
    return pd.DataFrame(out)


def attention_markdown(table: pd.DataFrame) -> str:
    columns = ["dataset", "model_id", "weights", "precision", "layers", "n_objects", "measure", "object", "value",
               "n_images", "chance"]
    return ("# CLS attention by object size\n\nPaper B's figure 3 in our reading (the authors published no code "
            "for it), over the scenes with one large object: the class token's attention to the image patches "
            "(averaged over heads and the 'layers' named, renormalised over the patches), and each object's exact "
            "pixels from the renderer's object-index pass carried through the model's resize and crop. 'attention "
            "share': the share of the patch attention that lands on the object; 'area share': the share of the model "
            "input the object covers; 'attention per unit area': their ratio, 1 where attention follows the pixels "
            "(the variant without the confound that a large object covers more patches). 'a small one': per image, "
            "the mean over its small objects. Means over images show their 95% t-interval; the last two measures "
            "are shares of images with their 95% Wilson interval, and chance is 1 / the object count; n: images. "
            "The paper gives no number for these.\n" + RANDOM_NOTE + "\n\n"
            + markdown_table(table.to_dict("records"), columns))


DERIVED_TABLES = {"real_world": (real_world_table, real_world_markdown),
                  "training_progression": (progression_table, progression_markdown),
                  "caption_order": (caption_order_table, caption_order_markdown),
                  "caption_order_difference": (caption_order_difference_table, caption_order_difference_markdown),
                  "clip_selection": (clip_selection_table, clip_selection_markdown)}

TABLES = {"probes": (probe_table, probe_markdown), "binding": (binding_table, binding_markdown),
          "tor": (tor_table, tor_markdown), "ior": (ior_table, ior_markdown),
          "matching": (matching_table, matching_markdown),
          "compositional": (compositional_table, compositional_markdown),
          "recall": (recall_table, recall_markdown),
          "mention_order": (mention_order_table, mention_order_markdown),
          "objects_per_caption": (objects_per_caption_table, objects_per_caption_markdown),
          "slot_classification": (slot_classification_table, slot_classification_markdown),
          "attention": (attention_table, attention_markdown),
          "caption_tor": (caption_tor_table, caption_tor_markdown),
          "prompt_order": (prompt_order_table, prompt_order_markdown)}


def main(snakemake) -> None:
    from workflow_scripts.common.files import write_atomically
    from workflow_scripts.common.logs import start_job

    logger = start_job(snakemake)
    name = snakemake.wildcards.table
    if name in DERIVED_TABLES:
        make_table, make_markdown = DERIVED_TABLES[name]
        tables = {source: pd.read_csv(path) for source, path in snakemake.input.items() if source != "runs"}
        if "runs" in snakemake.input.keys():
            tables["runs"] = read_training_curves(snakemake.input.runs)
            tables["heldout"] = read_heldout(snakemake.input.runs)
        table = make_table(tables, snakemake.params.context)
    else:
        make_table, make_markdown = TABLES[name]
        table = make_table(read_results(snakemake.input.results))
    write_atomically(snakemake.output.csv, lambda partial: table.to_csv(partial, index=False))
    write_atomically(snakemake.output.md, lambda partial: Path(partial).write_text(make_markdown(table)))
    logger.info("%d %s rows", len(table), name)


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
