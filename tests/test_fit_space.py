"""The search space of `edgeconv fit` (issue 23): default space, --space entries (zoo models,
user builders, TOML files), every refusal as one line, keys, and building a candidate."""

import json
import re
import subprocess
import sys
import textwrap

import pytest

from edgeconv.errors import EdgeconvError
from edgeconv.fit import space as fit_space
from edgeconv.fit.space import (
    MAX_CANDIDATES,
    Candidate,
    build_candidate,
    default_space,
    parse_space,
)
from edgeconv.zoo import get_spec, resolve_options

SAFE_KEY = re.compile(r"[a-z0-9][a-z0-9._-]*")

BUILDERS = '''
import pathlib

import keras

CALLS = pathlib.Path(__file__).with_suffix(".calls")


def tiny_net(input_shape, classes, width=8, depth=1, act="relu"):
    with CALLS.open("a") as fh:  # proves when the function is (not) called
        fh.write("called\\n")
    inputs = keras.Input(shape=input_shape)
    x = inputs
    for _ in range(depth):
        x = keras.layers.Conv2D(width, 3, padding="same", activation=act)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(classes, activation="softmax")(x))


def not_a_model(input_shape, classes):
    return "a string"


def raises(input_shape, classes):
    raise ValueError("no such layer")


def fixed_input(input_shape, classes):
    return tiny_net((16, 16, 1), classes)


def two_classes(input_shape, classes):
    return tiny_net(input_shape, 2)


def needs_depth(input_shape, classes, depth):
    return tiny_net(input_shape, classes, depth=depth)


def no_classes(input_shape):
    return None
'''


@pytest.fixture
def nets(tmp_path):
    path = tmp_path / "nets.py"
    path.write_text(BUILDERS)
    return path


def _refusal(entries, channels=1) -> str:
    with pytest.raises(EdgeconvError) as info:
        parse_space(entries, channels)
    message = str(info.value)
    assert "\n" not in message
    return message


# --- the default space ---------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_default_space_holds_the_compact_families(channels):
    space = default_space(channels)
    assert space.entries == ("default",)
    keys = [c.key for c in space.candidates]
    expected = (
        [f"mobilenet-alpha{a}-{s}" for a in ("0.25", "0.5", "0.75", "1.0")
         for s in (32, 48, 64, 96)]
        + [f"mobilenetv2-alpha{a}-{s}" for a in ("0.35", "0.5", "0.75", "1.0")
           for s in (32, 48, 64, 96)]
        + [f"squeezenet-v{v}-{s}" for v in ("1.0", "1.1") for s in (48, 64)]
        + ["separable-vgg-cifar-blocks2-kernel3-32", "separable-vgg-cifar-blocks3-kernel3-32",
           "gap-mnist-28", "fcn-mnist-28"])
    assert keys == expected  # stable: the same keys, in the same order, every time
    assert default_space(channels) == space
    # Every candidate is one the zoo itself accepts at its size and these channels.
    for c in space.candidates:
        resolve_options(get_spec(c.model), input_shape=(c.size, c.size, channels),
                        **c.options_dict())
    squeeze = [c for c in space.candidates if c.model == "squeezenet"]
    assert {c.options_dict()["version"] for c in squeeze} == {"1.0", "1.1"}  # strings
    assert min(c.size for c in squeeze) >= get_spec("squeezenet").min_size


def test_default_space_drops_what_the_zoo_refuses(monkeypatch):
    # A 32x32 SqueezeNet (min_size 35) and a block with no classifier are dropped, not fatal.
    monkeypatch.setattr(fit_space, "DEFAULT_ENTRIES",
                        ("squeezenet:size=32,48", "conv3x3-rgb64", "gap-mnist:size=28"))
    assert [c.key for c in default_space(3).candidates] == ["squeezenet-v1.0-48",
                                                            "gap-mnist-28"]


def test_validation_does_not_import_tensorflow():
    code = textwrap.dedent("""
        import sys
        from edgeconv.errors import EdgeconvError
        from edgeconv.fit.space import default_space, parse_space
        default_space(1)
        parse_space(["mobilenet:alpha=0.25:size=32", "default"], 1)
        try:
            parse_space(["mobilenet:alpah=0.5"], 1)
        except EdgeconvError:
            pass
        print(sorted(m for m in ("tensorflow", "keras") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


# --- zoo entries ---------------------------------------------------------------------------


def test_zoo_entries_expand_in_order_with_defaults_filled_in():
    space = parse_space(["mobilenet:alpha=0.25,0.5:size=32,48", "squeezenet:version=1.1,1.0",
                         "mobilenet:alpha=0.5:size=48", "mobilenet"], 1)
    assert [c.key for c in space.candidates] == [
        "mobilenet-alpha0.25-32", "mobilenet-alpha0.25-48", "mobilenet-alpha0.5-32",
        "mobilenet-alpha0.5-48",  # the third entry repeats it: deduplicated
        "squeezenet-v1.1-48", "squeezenet-v1.0-48",  # recipe size; values' order as given
        "mobilenet-alpha1.0-48"]  # alpha's default and the recipe's input size filled in
    assert space.entries == ("mobilenet:alpha=0.25,0.5:size=32,48",
                             "squeezenet:version=1.1,1.0", "mobilenet:alpha=0.5:size=48",
                             "mobilenet")
    first = space.candidates[0]
    assert first.options == (("alpha", 0.25),) and first.size == 32 and first.builder is None
    assert first.label == "mobilenet alpha 0.25 at 32x32"
    assert space.candidates[4].options == (("version", "1.1"),)


def test_knob_values_take_the_zoo_options_types():
    space = parse_space(["mobilenet:alpha=1:size=32", "separable-vgg-cifar:blocks=2:kernel=5",
                         "squeezenet:version=1.0:size=35"], 1)
    alpha, vgg, squeeze = (c.options_dict() for c in space.candidates)
    assert alpha == {"alpha": 1.0} and isinstance(alpha["alpha"], float)
    assert vgg == {"blocks": 2, "kernel": 5} and isinstance(vgg["blocks"], int)
    assert squeeze == {"version": "1.0"}  # the string the zoo expects, never 1.0
    assert space.candidates[1].size == 32  # the fixed-size-free VGG at its recipe size


def test_default_can_be_widened_and_fcn_takes_its_fixed_size():
    space = parse_space(["fcn-mnist", "default", "gap-mnist:size=20,28"], 1)
    keys = [c.key for c in space.candidates]
    assert keys[0] == "fcn-mnist-28" and keys[-1] == "gap-mnist-20"
    assert len(keys) == len(default_space(1).candidates) + 1  # fcn-mnist-28 only once


ZOO_REFUSALS = [
    (["mobilenet:alpah=0.5"], ("--space 'mobilenet:alpah=0.5': 'alpah' is not a knob of"
     " mobilenet; did you mean 'alpha'? (knobs: alpha, size)")),
    (["mobilenett:size=32"], ("--space 'mobilenett:size=32': unknown model 'mobilenett'; did you"
     " mean 'mobilenet'?")),
    (["mobilenet:alpha=0.5,9"], "--space 'mobilenet:alpha=0.5,9': --alpha must be at most 4"),
    (["mobilenet:alpha=wide"], "--space 'mobilenet:alpha=wide': alpha takes a number; got wide"),
    (["squeezenet:version=1.2"], ("--space 'squeezenet:version=1.2': --version for 'squeezenet'"
     " must be one of 1.0, 1.1")),
    (["squeezenet:size=16,48"], ("--space 'squeezenet:size=16,48': size 16: squeezenet needs a"
     " size >= 35")),
    (["fcn-mnist:size=32"], "--space 'fcn-mnist:size=32': size 32: fcn-mnist takes only 28x28"),
    (["mobilenet:size=32.5"], "--space 'mobilenet:size=32.5': size takes an integer"),
    (["gap-mnist:size=5000"], "--space 'gap-mnist:size=5000': size must be 1 to 4096"),
    (["separable-vgg-cifar:blocks=9"], "--space 'separable-vgg-cifar:blocks=9': --blocks for"),
    (["conv3x3-rgb64"], "--space 'conv3x3-rgb64': conv3x3-rgb64 has no classifier to train"),
    (["char-cnn"], "--space 'char-cnn': char-cnn reads"),
    (["mobilenet:classes=3"], "--space 'mobilenet:classes=3': classes comes from the data"),
    (["mobilenet:alpha="], "--space 'mobilenet:alpha=': alpha has no values"),
    (["mobilenet:alpha=0.5,,1"], "--space 'mobilenet:alpha=0.5,,1': alpha has an empty value"),
    (["mobilenet:alpha"], "--space 'mobilenet:alpha': 'alpha' is not knob=value"),
    (["mobilenet:alpha=1:alpha=2"], "--space 'mobilenet:alpha=1:alpha=2': alpha is given twice"),
    (["mobilenet", ""], "--space: an entry is empty"),
    ([], "--space needs at least one entry"),
    (["nets/model"], ("--space 'nets/model': 'nets/model' is neither a zoo model nor"
     " FILE.py:FUNCTION")),
]


@pytest.mark.parametrize("entries,expected", ZOO_REFUSALS,
                         ids=[e[0] if e else "none" for e, _ in ZOO_REFUSALS])
def test_zoo_refusals_are_one_line_naming_the_entry(entries, expected):
    assert _refusal(entries).startswith(expected)


def test_channel_counts_out_of_bounds_are_refused():
    assert _refusal(["mobilenet"], channels=0) == "input channels must be 1 to 1024; got 0"
    with pytest.raises(EdgeconvError, match="input channels must be 1 to 1024"):
        default_space(2000)


def test_too_many_candidates_is_refused_before_expanding():
    sizes = ",".join(str(s) for s in range(32, 32 + 51))
    message = _refusal([f"mobilenet:alpha=0.25,0.5,0.75,1.0:size={sizes}"])
    assert message == (f"--space gives 204 candidates; a study takes at most {MAX_CANDIDATES}"
                       " (give fewer knob values)")
    # The default space counts too.
    sizes = ",".join(str(s) for s in range(32, 32 + MAX_CANDIDATES - 39))
    assert "gives 201 candidates" in _refusal(["default", f"gap-mnist:size={sizes}"])
    ok = ",".join(str(s) for s in range(32, 32 + MAX_CANDIDATES - 40))
    assert len(parse_space(["default", f"gap-mnist:size={ok}"], 1).candidates) == MAX_CANDIDATES


# --- user builders -------------------------------------------------------------------------


def test_builder_entries_are_checked_without_calling_the_function(nets, monkeypatch):
    monkeypatch.chdir(nets.parent)
    space = parse_space(["nets.py:tiny_net:width=8,16:act=relu,elu:size=32",
                         f"{nets}:tiny_net:size=24:width=8.5"], 1)
    assert not nets.with_suffix(".calls").exists()  # imported, never called
    keys = [c.key for c in space.candidates]
    assert keys == ["builder-nets-tiny_net-actrelu-width8-32",
                    "builder-nets-tiny_net-actelu-width8-32",
                    "builder-nets-tiny_net-actrelu-width16-32",
                    "builder-nets-tiny_net-actelu-width16-32",
                    "builder-nets-tiny_net-width8.5-24"]
    first = space.candidates[0]
    assert first.model == "builder" and first.builder == f"{nets}:tiny_net"  # absolute
    assert first.options == (("act", "relu"), ("width", 8))
    assert first.label == "builder nets.py:tiny_net act relu width 8 at 32x32"
    assert isinstance(space.candidates[-1].options_dict()["width"], float)


BUILDER_REFUSALS = [
    ("nets.py:tiny_net:widht=8:size=32", ("'widht' is not a parameter of nets.py:tiny_net; did"
     " you mean 'width'? (knobs: width, depth, act, size)")),
    ("nets.py:tiny_net:width=8", "a builder needs size="),
    ("nets.py:tiny_ne:size=32", "nets.py has no function 'tiny_ne'; did you mean 'tiny_net'?"),
    ("missing.py:tiny_net:size=32", "missing.py does not exist"),
    ("nets.py:needs_depth:size=32", "nets.py:needs_depth needs a value for depth"),
    ("nets.py:no_classes:size=32", "nets.py:no_classes must take input_shape= and classes="),
    ("nets.py:tiny_net:classes=3:size=32", "classes comes from the data"),
    ("nets.py:tiny_net:size=0", "size must be 1 to 4096"),
    ("nets.py:", "nets.py needs a function: FILE.py:FUNCTION"),
    ("nets.py", "a builder entry is FILE.py:FUNCTION"),
]


@pytest.mark.parametrize("entry,expected", BUILDER_REFUSALS, ids=[e for e, _ in BUILDER_REFUSALS])
def test_builder_refusals_are_one_line_naming_the_entry(nets, monkeypatch, entry, expected):
    monkeypatch.chdir(nets.parent)
    assert _refusal([entry]).startswith(f"--space '{entry}': {expected}")


def test_a_builder_file_that_fails_to_import(tmp_path, monkeypatch):
    (tmp_path / "broken.py").write_text("import no_such_module_for_fit\n")
    monkeypatch.chdir(tmp_path)
    assert _refusal(["broken.py:net:size=32"]) == (
        "--space 'broken.py:net:size=32': broken.py failed to import: ModuleNotFoundError: No"
        " module named 'no_such_module_for_fit'")


def test_two_builder_files_with_one_stem_cannot_share_a_trial_folder(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "net.py").write_text(
            "def net(input_shape, classes):\n    return None\n")
    message = _refusal([f"{tmp_path}/a/net.py:net:size=32", f"{tmp_path}/b/net.py:net:size=32"])
    assert message.startswith("--space: 'builder net.py:net at 32x32' and 'builder net.py:net"
                              " at 32x32' would share the trial folder 'builder-net-net-32'")


# --- TOML files ----------------------------------------------------------------------------


def test_a_toml_space_file(nets, tmp_path, monkeypatch):
    (tmp_path / "space.toml").write_text(textwrap.dedent("""
        [[space]]
        model = "mobilenet"
        alpha = [0.25, 0.5]
        size = [32, 48]

        [[space]]
        model = "squeezenet"
        version = [1.0, "1.1"]

        [[space]]
        model = "nets.py:tiny_net"   # relative to this file
        width = [8, 16]
        act = "relu"
        size = 32
    """))
    monkeypatch.chdir("/")
    space = parse_space([str(tmp_path / "space.toml")], 3)
    assert space.entries == (str(tmp_path / "space.toml"),)
    assert [c.key for c in space.candidates] == [
        "mobilenet-alpha0.25-32", "mobilenet-alpha0.25-48", "mobilenet-alpha0.5-32",
        "mobilenet-alpha0.5-48", "squeezenet-v1.0-48", "squeezenet-v1.1-48",
        "builder-nets-tiny_net-actrelu-width8-32", "builder-nets-tiny_net-actrelu-width16-32"]
    assert space.candidates[-1].builder == f"{nets}:tiny_net"


TOML_REFUSALS = [
    ("[[space]]\nmodel = \"mobilenet\"\nalpah = 0.5\n",
     "[[space]] #1 (mobilenet): 'alpah' is not a knob of mobilenet; did you mean 'alpha'?"),
    ("[[space]]\nmodel = \"gap-mnist\"\n[[space]]\nmodel = \"squeezenet\"\nsize = [32]\n",
     "[[space]] #2 (squeezenet): size 32: squeezenet needs a size >= 35"),
    ("[[space]]\nalpha = 0.5\n", "[[space]] #1: needs model = \"NAME\" or \"FILE.py:FUNCTION\""),
    ("[[space]]\nmodel = \"mobilenet\"\nalpha = []\n", ("[[space]] #1 (mobilenet): alpha has no"
     " values")),
    ("[[space]]\nmodel = \"mobilenet\"\nalpha = [[0.5]]\n", ("[[space]] #1 (mobilenet): alpha"
     " takes a value or a list of values")),
    ("[[space]]\nmodel = \"mobilenet\"\nalpha = true\n", ("[[space]] #1 (mobilenet): alpha takes"
     " a number; got True")),
    ("[[space]]\nmodel = \"mobilenet\"\n[other]\nx = 1\n", (": a space file holds [[space]]"
     " tables only (found: other)")),
    ("space = 3\n", ": a space file holds [[space]] tables only"),
    ("[[space]\n", ": not a readable TOML space"),
]


@pytest.mark.parametrize("text,expected", TOML_REFUSALS, ids=range(len(TOML_REFUSALS)))
def test_toml_refusals_name_the_file_and_table(tmp_path, text, expected):
    path = tmp_path / "space.toml"
    path.write_text(text)
    message = _refusal([str(path)])
    assert message.startswith(f"{path}{expected}" if expected.startswith(":")
                              else f"{path} {expected}")


def test_a_missing_toml_file(tmp_path):
    assert _refusal([str(tmp_path / "none.toml")]) == f"{tmp_path / 'none.toml'} does not exist"


# --- keys and records ----------------------------------------------------------------------


def test_keys_are_unique_and_filesystem_safe(nets, tmp_path):
    odd = tmp_path / "My Nets.py"
    odd.write_text(BUILDERS)
    space = parse_space(["default", f"{nets}:tiny_net:act=relu,Relu,re/lu,../x:size=32",
                         f"{odd}:tiny_net:size=32", f"{nets}:tiny_net:width=8,8.0:size=32"], 1)
    keys = [c.key for c in space.candidates]
    assert len(keys) == len(set(keys)) == len(space.candidates)
    for key in keys:
        assert SAFE_KEY.fullmatch(key) and len(key) <= 130, key
    # "Relu" and "re/lu" are not "relu": made safe, they carry a digest of the exact value.
    tails = [k for k in keys if k.startswith("builder-nets-tiny_net-act")]
    assert tails[0] == "builder-nets-tiny_net-actrelu-32"
    assert all(re.fullmatch(r".*-[0-9a-f]{8}", k) for k in tails[1:])
    assert "builder-nets-tiny_net-width8-32" in keys and "builder-nets-tiny_net-width8.0-32" \
        in keys  # an int and a float knob stay two candidates, as the builder sees them


def test_candidates_round_trip_through_json(nets):
    space = parse_space(["default", f"{nets}:tiny_net:width=8:act=elu:size=32"], 1)
    for c in space.candidates:
        back = Candidate.from_dict(json.loads(json.dumps(c.to_dict())))
        assert back == c and back.key == c.key and hash(back) == hash(c)
        assert {type(v) for v in back.options_dict().values()} \
            == {type(v) for v in c.options_dict().values()}
    assert json.loads(json.dumps(space.to_dict()))["candidates"][0] == {
        "key": "mobilenet-alpha0.25-32", "model": "mobilenet", "options": {"alpha": 0.25},
        "size": 32, "builder": None}


@pytest.mark.parametrize("record,expected", [
    ({"key": "mobilenet-alpha0.5-32", "model": "mobilenet", "options": {"alpha": 0.25},
      "size": 32, "builder": None}, "does not match its contents"),
    ({"model": "mobilenet", "options": {"alpah": 0.25}, "size": 32, "builder": None},
     "unknown option(s) alpah"),
    ({"model": "mobilenet", "options": [], "size": 32}, "not a candidate record"),
    ({"model": "mobilenet", "options": {}, "size": "32"}, "not a candidate record"),
    ([1, 2], "a candidate record must be an object"),
])
def test_a_bad_candidate_record_is_one_line(record, expected):
    with pytest.raises(EdgeconvError, match=re.escape(expected)):
        Candidate.from_dict(record)


# --- building ------------------------------------------------------------------------------


def test_build_a_zoo_candidate():
    candidate = parse_space(["mobilenet:alpha=0.25:size=32"], 1).candidates[0]
    model = build_candidate(candidate, classes=5, channels=1)
    assert tuple(model.inputs[0].shape) == (None, 32, 32, 1)
    assert tuple(model.outputs[0].shape) == (None, 5)


def test_build_a_builder_candidate(nets):
    candidate = parse_space([f"{nets}:tiny_net:width=4:depth=2:size=20"], 3).candidates[0]
    model = build_candidate(candidate, classes=7, channels=3)
    assert tuple(model.inputs[0].shape) == (None, 20, 20, 3)
    assert tuple(model.outputs[0].shape) == (None, 7)
    assert [la.filters for la in model.layers if hasattr(la, "filters")] == [4, 4]
    assert nets.with_suffix(".calls").read_text() == "called\n"


@pytest.mark.parametrize("function,expected", [
    ("not_a_model", "returned str, not a Keras model"),
    ("raises", "failed at 32x32: ValueError: no such layer"),
    ("fixed_input", "built a model with input(s) 16x16x1; fit asked for one input of 32x32x1"),
    ("two_classes", "built a model with output(s) 2; fit needs one output of 10 classes"),
])
def test_a_builder_that_does_not_build_the_model_asked_for(nets, function, expected):
    candidate = parse_space([f"{nets}:{function}:size=32"], 1).candidates[0]
    with pytest.raises(EdgeconvError) as info:
        build_candidate(candidate, classes=10, channels=1)
    assert str(info.value) == f"builder {nets}:{function} {expected}"


@pytest.mark.fit  # ~20 s: every model of the default space, built once
def test_every_default_candidate_builds():
    for c in default_space(3).candidates:
        model = build_candidate(c, classes=10, channels=3)
        assert tuple(model.inputs[0].shape) == (None, c.size, c.size, 3), c.key
        assert tuple(model.outputs[0].shape) == (None, 10), c.key
