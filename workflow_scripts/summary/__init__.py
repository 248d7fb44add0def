"""What each table and figure gathers: the wiring that the summary rules (rules/summary.smk) read. A table is
built when its analysis runs on at least one dataset; a figure when every source it draws on is."""

# table: (paper folder under results/, the analysis whose results it gathers, that analysis' output)
TABLES = {
    "probes": ("paper_a", "probes", "probes"),
    "binding": ("paper_a", "binding", "binding"),
    "tor": ("paper_b", "tor", "tor"),
    "ior": ("paper_b", "ior", "ior"),
    "matching": ("paper_b", "matching", "matching"),
    "compositional": ("paper_a", "compositional", "compositional"),
    "recall": ("paper_a", "recall", "recall"),
    "mention_order": ("paper_b", "mention_order", "mention_order"),
    "objects_per_caption": ("paper_b", "mention_order", "objects_per_caption"),
    "slot_classification": ("paper_b", "slot_classification", "slots"),
    "attention": ("paper_b", "attention", "attention"),
    "caption_tor": ("paper_b", "caption_tor", "tor"),
    "prompt_order": ("paper_b", "prompt_order", "summary"),
}
# Tables drawn from other tables: (folder, the tables they read). paper A's real_world gathers the benchmarks of its
# real-world table from compositional and recall, and is built when either is. The tables of the CLIPs trained in
# the workflow: a run's checkpoints are the model entries that name it (models: trained, checkpoint);
# training_progression is built when some run has two or more of them, caption_order when the runs' last
# checkpoints have two or more caption orders (caption_order_difference: each pair of orders' difference);
# clip_selection when the config names candidates (clip_selection). TRAINING_RUNS stands for every clip_training
# run's folder (rule train_clip), read as inputs "runs" (the loss curves: the training figure, each run's
# convergence flag) and "heldout" (the held-out measures at each checkpoint).
TRAINING_RUNS = "clip_training runs"
DERIVED_TABLES = {
    "real_world": ("paper_a", ("compositional", "recall")),
    "training_progression": ("clip_training", ("tor", "ior", TRAINING_RUNS)),
    "caption_order": ("clip_training", ("training_progression",)),
    "caption_order_difference": ("clip_training", ("training_progression",)),
    "clip_selection": ("clip_training", (TRAINING_RUNS,)),
}
TRAINING_TABLES = ("training_progression", "caption_order", "caption_order_difference")
# figure: (paper folder, {input name: a table, (analysis, output) for results read directly, or TRAINING_RUNS})
FIGURES = {
    "probe_accuracy": ("paper_a", {"probes": "probes"}),
    "probes_vs_objects": ("paper_a", {"probes": "probes"}),
    "binding_accuracy": ("paper_a", {"binding": "binding"}),
    "caption_cosines": ("paper_a", {"cosines": ("binding", "cosines")}),
    "modality_gap": ("paper_a", {"binding": "binding"}),
    "tor_position_bias": ("paper_b", {"tor": "tor"}),
    "ior_large_object": ("paper_b", {"ior": "ior"}),
    "matching_conditions": ("paper_b", {"matching": "matching"}),
    "mention_order": ("paper_b", {"mention_order": "mention_order"}),
    "slot_classification": ("paper_b", {"slot_classification": "slot_classification"}),
    "attention_by_size": ("paper_b", {"attention": "attention"}),
    "caption_tor_position": ("paper_b", {"caption_tor": "caption_tor"}),
    "prompt_order": ("paper_b", {"prompt_order": "prompt_order"}),
    "training_curve": ("clip_training", {"runs": TRAINING_RUNS}),
    "training_progression": ("clip_training", {"progression": "training_progression"}),
}
PAPER_TITLES = {"paper_a": "Paper A", "paper_b": "Paper B", "clip_training": "CLIP trained in the workflow"}
