"""Rule `prefetch_hf_model`: fetch one model other than CLIP (the caption-order statistics' object-listing LLM,
detector or segmenter, or the prompt-order experiment's text-to-image pipeline) where there is internet, and prove
that it loads from the Hugging Face cache with the hub offline (hf_models.prefetch_hf); the JSON record says what was
verified."""
import json
import sys
from pathlib import Path

if "snakemake" in globals():  # run by Snakemake's script directive: make the package importable
    sys.path.insert(0, str(Path(snakemake.scriptdir).parents[1]))  # noqa: F821

from workflow_scripts.models.hf_models import describe_hf_weights, prefetch_hf


def loader(role: str):
    """(load(name, offline), describe(name)) of a model of this role (llm, detector, segmenter or text_to_image),
    loaded on the CPU."""
    if role == "text_to_image":
        from workflow_scripts.models.text_to_image import describe_pipeline_weights, load_pipeline

        return (lambda name, offline: load_pipeline(name, "cpu", "fp32", offline)), describe_pipeline_weights
    if role == "llm":
        from workflow_scripts.models.llm_objects import load_lister

        return (lambda name, offline: load_lister(name, "cpu", offline)), describe_hf_weights
    from workflow_scripts.models.detection import load_detector, load_segmenter

    load = load_segmenter if role == "segmenter" else load_detector
    return (lambda name, offline: load(name, "cpu", offline)), describe_hf_weights


def main(snakemake) -> None:
    from workflow_scripts.common.files import write_atomically
    from workflow_scripts.common.logs import start_job

    logger = start_job(snakemake)
    role = snakemake.params.role
    record = {"role": role, **prefetch_hf(snakemake.params.name, *loader(role))}
    text = json.dumps(record, indent=2) + "\n"
    write_atomically(snakemake.output[0], lambda partial: Path(partial).write_text(text))
    logger.info("%s %s: %s; %s", record["role"], record["model"], record["weights"], record["verified"])


if __name__ == "__main__" and "snakemake" in globals():
    main(snakemake)  # noqa: F821
