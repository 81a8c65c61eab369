# make test-slurm: xl-sweep's Slurm fan-out (pipelines/sweep-slurm.sbatch) against a real
# one-node Slurm on this machine: tests/slurm/run.sh starts munged, slurmctld and slurmd
# (root; Debian's slurm-wlm and munge, in `make deps`) with tests/slurm/slurm.conf.in, runs
# the documented plan -> sbatch --array -> sbatch --dependency=afterany collect recipe,
# checks the collected run (a failed array task is a failed trial) and stops the daemons.
# SLURM_TEST_TIMEOUT (default 300 s) bounds the whole run. .ci/run runs it after make check.
.PHONY: test-slurm
test-slurm: $(TOOLS)
	@BIN=$(abspath $(BIN)) tests/slurm/run.sh
