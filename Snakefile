"""Snakemake view of the stage table in dvc.yaml: one rule per resolved DVC stage.

Stages, commands, dependencies and outputs come from dvc.yaml (resolved by DVC itself, see
mlpgraph.workflow); this file only adds what Snakemake alone has: threads, resources, logs and
the `all` target. params.yaml is checked first: a mistake there, or a `--config` value, ends the
run with one line and exit status 2. A training stage given more than one GPU runs its command
under torchrun (launch_command; dvc.lock keeps the dvc.yaml command). Each rule also takes a stamp that is
touched when dvc.lock says the stage's command, dependencies or parameters changed, so both
engines rerun the same stages. After a successful job the rule touches a marker; the onsuccess
(and onerror) handler records exactly the stages that ran in dvc.lock (`dvc commit -f
--no-relink`, see mlpgraph.workflow), so `dvc status` is clean and `dvc repro` has nothing to do.
"""

import os
from pathlib import Path

from snakemake.utils import min_version

from mlpgraph.paths import MetricsFiles
from mlpgraph.workflow import (
    DONE_DIR,
    commit_completed,
    done_marker,
    is_directory_output,
    launch_command,
    refresh_stamps,
    snakemake_stage_table,
)

min_version("8.20")

# `snakemake --report report.html`: the results document (tables, plots and demos in one page)
# and the report's plots, beside Snakemake's record of the run.
report: "docs/snakemake_report.rst"

STAGES = snakemake_stage_table(workflow.basedir, config)
REPORT_PAGE = str(MetricsFiles(Path("metrics")).results_html())
REPORT_PLOTS = str(MetricsFiles(Path("metrics")).plots())
STAMPS = refresh_stamps(STAGES, workflow.basedir)
os.makedirs(os.path.join(workflow.basedir, DONE_DIR), exist_ok=True)


def as_output(path):
    """A stage output as Snakemake declares it: folders as directory(), report items flagged for --report."""
    output = directory(path) if is_directory_output(path) else path
    if path == REPORT_PAGE:
        return report(output, category="Results", labels={"document": "results"})
    if path == REPORT_PLOTS:
        return report(output, patterns=["{name}.png"], category="Plots", labels={"plot": "{name}"})
    return output


rule all:
    input:
        [out for stage in STAGES for out in stage.outs],
    default_target: True


for stage in STAGES:

    rule:
        name:
            stage.rule_name
        input:
            stage.inputs,
            STAMPS[stage.name],
        output:
            [as_output(out) for out in stage.outs],
        log:
            f"logs/{stage.rule_name}.log",
        params:
            cmd=launch_command(stage),
            done=done_marker(stage),
        conda:
            "envs/mlpgraph.yaml"
        threads: stage.resources["threads"]
        resources:
            mem_mb=stage.resources["mem_mb"],
            runtime=stage.resources["runtime"],
            gpu=stage.resources["gpu"],
        shell:
            "({params.cmd}) > {log} 2>&1 && touch {params.done}"


onsuccess:
    commit_completed(STAGES, workflow.basedir)


onerror:
    commit_completed(STAGES, workflow.basedir)
