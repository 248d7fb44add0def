"""Where files lie inside a dataset's results folder; shared by the Snakefile and the scripts."""


def shard_dir(shard: int) -> str:
    return f"images/shard-{shard:03d}"


def image_path(shard: int, scene_id: str) -> str:
    return f"{shard_dir(shard)}/{scene_id}.png"
