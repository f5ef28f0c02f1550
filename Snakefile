"""Snakemake view of the stage table in dvc.yaml: one rule per resolved DVC stage.

Stages, commands, dependencies and outputs come from dvc.yaml (resolved by DVC itself, see
mlpgraph.workflow); this file only adds what Snakemake alone has: threads, resources, logs and
the `all` target. Each rule also takes a stamp that is touched when dvc.lock says the stage's
command, dependencies or parameters changed, so both engines rerun the same stages. After a
successful run the onsuccess handler records the outputs in dvc.lock (`dvc commit -f
--no-relink`; relinking would rewrite the outputs and make them look newer than what was built
from them), so `dvc status` is clean and `dvc repro` has nothing to do.
"""

import shlex

from snakemake.utils import min_version

from mlpgraph.workflow import (
    is_directory_output,
    load_stage_table,
    refresh_stamps,
    stages_with_outputs,
)

min_version("8.20")

STAGES = load_stage_table(workflow.basedir)
STAMPS = refresh_stamps(STAGES, workflow.basedir)


def as_output(path):
    return directory(path) if is_directory_output(path) else path


rule all:
    input:
        [out for stage in STAGES for out in stage.outs],
    default_target: True


for stage in STAGES:

    rule:
        name:
            stage.rule_name
        input:
            stage.deps,
            STAMPS[stage.name],
        output:
            [as_output(out) for out in stage.outs],
        log:
            f"logs/{stage.rule_name}.log",
        params:
            cmd=stage.cmd,
        conda:
            "envs/mlpgraph.yaml"
        threads: stage.resources["threads"]
        resources:
            mem_mb=stage.resources["mem_mb"],
            runtime=stage.resources["runtime"],
            gpu=stage.resources["gpu"],
        shell:
            "({params.cmd}) > {log} 2>&1"


onsuccess:
    done = stages_with_outputs(STAGES, workflow.basedir)
    if done:
        shell("dvc commit --force --no-relink --quiet " + " ".join(shlex.quote(name) for name in done))
