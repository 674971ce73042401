"""Studies: a YAML spec of models × hyper-parameters × datasets × step budgets × seeds, expanded
into trials and run as independent Ray tasks, each writing an ordinary run folder.

One job per module:

- ``spec``: the YAML spec format (documented there) and its expansion into named trials;
- ``trial``: one trial's folder state (done / resume / new / conflict), its run in a worker
  (``untwine.run``, failures as one line) and its ``Outcome``;
- ``runner``: Ray: start or join it, pack trials on its resources, retry once, Ctrl-C;
- ``progress``: the progress line with an ETA, ``OUT/sweep.json`` and the summary table.

A trial whose folder already holds the finished run is skipped; one with a checkpoint is resumed
from it; one that fails is retried once (resuming if it left a checkpoint), then reported with
its one-line error, and the sweep goes on.
"""

from untwine.sweep.progress import MANIFEST, SweepProgress, summary_rows, write_manifest
from untwine.sweep.runner import INSTALL_HINT, Resources, plan_resources, run_sweep
from untwine.sweep.spec import Spec, Trial, load_spec, parse_spec
from untwine.sweep.trial import Outcome, one_line, run_trial, trial_state

__all__ = [
    "INSTALL_HINT", "MANIFEST", "Outcome", "Resources", "Spec", "SweepProgress", "Trial",
    "load_spec", "one_line", "parse_spec", "plan_resources", "run_sweep", "run_trial",
    "summary_rows", "trial_state", "write_manifest",
]
