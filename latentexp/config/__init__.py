"""The config layer: conf/ composed with Hydra (tree), losses, backbones and datasets built by their
option names (components), the trainer schema in Hydra's ConfigStore, and the one module that uses
Hydra's internal API (hydra_internals). Imports the core, never runs or launch."""
