"""DDP under Hydra: the processes of ranks > 0 run the *same job* in the *same run dir*.

Lightning's DDP launcher starts ranks > 0 by re-running the command line. Under Hydra that
command would compose a fresh ``${now:...}`` run dir (one folder per rank), and inside a
``-m`` sweep it would start the whole sweep again in every child (lightning-hydra-template
#393). :class:`HydraDDPStrategy` starts each child as a single run of this job instead:
the job's own overrides, ``hydra.run.dir`` = rank 0's output dir, no ``.hydra/`` writes.
Without Hydra (or when the cluster starts the processes, e.g. SLURM ``srun``) it is
Lightning's ``DDPStrategy`` unchanged.
"""
from __future__ import annotations

import os
import subprocess
import sys

from lightning.pytorch.strategies import DDPStrategy
from lightning.pytorch.strategies.launchers.subprocess_script import _SubprocessScriptLauncher

# Command-line flags that choose the config; the children need them too.
_CONFIG_FLAGS = ("--config-path", "-cp", "--config-name", "-cn", "--config-dir", "-cd")


def _config_flags(argv: list[str]) -> list[str]:
    out, i = [], 0
    while i < len(argv):
        arg = argv[i]
        if arg in _CONFIG_FLAGS and i + 1 < len(argv):
            out += argv[i:i + 2]
            i += 2
            continue
        if arg.split("=", 1)[0] in _CONFIG_FLAGS and "=" in arg:
            out.append(arg)
        i += 1
    return out


def hydra_job_command(local_rank: int) -> tuple[list[str], str]:
    """The command (and working directory) that re-runs the current Hydra job as one run in its
    output dir: for rank ``local_rank`` of a DDP job started from a run or a sweep."""
    import __main__
    from hydra.core.hydra_config import HydraConfig
    from hydra.utils import get_original_cwd, to_absolute_path

    hc = HydraConfig.get()
    if __main__.__spec__ is None:
        command = [sys.executable, to_absolute_path(sys.argv[0])]
    else:
        command = [sys.executable, "-m", __main__.__spec__.name]
    command += _config_flags(sys.argv[1:])
    command += [o for o in hc.overrides.hydra if not o.lstrip("+~").startswith("hydra.mode")]
    command += list(hc.overrides.task)
    command += ["hydra.mode=RUN", f'hydra.run.dir="{hc.runtime.output_dir}"', "hydra.output_subdir=null",
                f"hydra.job.name={hc.job.name}_rank{local_rank}"]
    return command, get_original_cwd()


class HydraJobSubprocessLauncher(_SubprocessScriptLauncher):
    """Lightning's script launcher, with children that re-run the Hydra *job* (see module doc)."""

    def _call_children_scripts(self) -> None:
        from hydra.core.hydra_config import HydraConfig

        if not HydraConfig.initialized():
            return super()._call_children_scripts()
        self._check_can_spawn_children()
        self.procs = []
        os.environ["MASTER_ADDR"] = self.cluster_environment.main_address
        os.environ["MASTER_PORT"] = str(self.cluster_environment.main_port)
        os.environ["NODE_RANK"] = str(self.cluster_environment.node_rank())
        os.environ["LOCAL_RANK"] = str(self.cluster_environment.local_rank())
        os.environ["WORLD_SIZE"] = f"{self.num_processes * self.num_nodes}"
        for local_rank in range(1, self.num_processes):
            env = os.environ.copy()
            env["LOCAL_RANK"] = str(local_rank)
            if os.environ.get("PL_GLOBAL_SEED") is None:
                env.pop("PL_GLOBAL_SEED", None)
            command, cwd = hydra_job_command(local_rank)
            self.procs.append(subprocess.Popen(command, env=env, cwd=cwd))


class HydraDDPStrategy(DDPStrategy):
    """``DDPStrategy`` whose child processes reuse rank 0's Hydra job and run dir."""

    def _configure_launcher(self) -> None:
        super()._configure_launcher()
        if type(self._launcher) is _SubprocessScriptLauncher:
            self._launcher = HydraJobSubprocessLauncher(self.cluster_environment, self.num_processes, self.num_nodes)
