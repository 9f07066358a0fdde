"""The launch layer: from a command line to trained runs. Every job composed, validated and
specified once (validation, sweeps, jobs), the local launcher, the one-run task (training: a
config to result.json; build: the objects the trainer takes), and the trackers handed to the
trainer as callbacks."""
