"""Registry: registration, duplicate and unknown names, and config rebuilding."""

from dataclasses import dataclass

import pytest

from synthsae.synthetic.registry import Registry, config_from_dict


def test_register_and_get_round_trip():
    reg: Registry[int] = Registry(kind="widget")
    reg.register("a", 1)
    reg.register("b", 2)
    assert reg.get_or_raise("a") == 1
    assert reg.get_or_raise("b") == 2
    assert isinstance(reg, dict) and dict(reg) == {"a": 1, "b": 2}


def test_duplicate_name_raises_and_keeps_the_first_value():
    reg: Registry[int] = Registry(kind="widget")
    reg.register("a", 1)
    with pytest.raises(ValueError, match=r"'a'.*already registered"):
        reg.register("a", 2)
    assert reg["a"] == 1


def test_unknown_name_lists_available_names():
    reg: Registry[int] = Registry(kind="widget")
    reg.register("alpha", 1)
    reg.register("beta", 2)
    with pytest.raises(ValueError, match="gamma") as info:
        reg.get_or_raise("gamma")
    assert "'alpha'" in str(info.value) and "'beta'" in str(info.value)


def test_empty_name_rejected():
    with pytest.raises(ValueError, match="name"):
        Registry().register("", 1)


def test_registry_accepts_initial_contents_like_dict():
    reg = Registry({"x": 1}, kind="thing")
    assert reg.get_or_raise("x") == 1 and reg.kind == "thing"


@dataclass
class _Base:
    pass


@dataclass
class _Child(_Base):
    size: int = 3


def test_config_from_dict_builds_the_registered_class():
    reg: Registry[type] = Registry()
    reg.register("child", _Child)
    assert config_from_dict(reg, {"generator_name": "child", "size": 7}, _Base) == _Child(7)


def test_config_from_dict_errors():
    reg: Registry[type] = Registry()
    reg.register("child", _Child)
    reg.register("not_a_config", int)
    with pytest.raises(ValueError, match="generator_name"):
        config_from_dict(reg, {"size": 7}, _Base)
    with pytest.raises(ValueError, match="available names"):
        config_from_dict(reg, {"generator_name": "nope"}, _Base)
    with pytest.raises(TypeError, match="_Base"):
        config_from_dict(reg, {"generator_name": "not_a_config"}, _Base)
    with pytest.raises(TypeError, match="colour"):
        config_from_dict(reg, {"generator_name": "child", "colour": 1}, _Base)
    with pytest.raises(TypeError, match="dict"):
        config_from_dict(reg, ["child"], _Base)  # type: ignore[arg-type]
