"""Shared pieces of the get_config()/from_config() protocol of layers and optimisers."""


def build_from_config(cls, base, config, registry, what, default_name):
    """Instantiate the registered class named by config["class_name"] (default: default_name)
    with the other entries as keyword arguments. On `base` it dispatches on the name; on a
    subclass the name must be that subclass. Errors are TypeError/ValueError naming `what`."""
    if not isinstance(config, dict):
        raise TypeError(f"{what} config must be a dict, got {type(config).__name__}")
    cfg = dict(config)
    name = cfg.pop("class_name", default_name)
    target = registry.get(name)
    if target is None or (cls is not base and target is not cls):
        raise ValueError(f"{what} class_name must be one of {sorted(registry)}, got {name!r}")
    try:
        return target(**cfg)
    except TypeError as exc:
        raise ValueError(f"bad config for {name}: {exc}") from None


def config_repr(obj):
    """ClassName(key=value, ...) from obj.get_config()."""
    args = ", ".join(f"{k}={v!r}" for k, v in obj.get_config().items() if k != "class_name")
    return f"{type(obj).__name__}({args})"
