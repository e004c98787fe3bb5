"""Study specs: valid files load into the expected dataclasses; every malformed one stops with ONE
message naming the field, the bad value and what is allowed."""
from pathlib import Path

import pytest

from sweep.engine import Legacy
from sweep.spec import (
    LEGACY_SWITCHES, Dimension, LegacySection, SeedSection, SpecError, load_spec, parse_spec,
)

ROOT = Path(__file__).resolve().parents[1]

BASE = """\
[study]
name = "t"
sampler = "grid"
objective = "val_acc"
aggregate = "mean"

[data]
dataset = "moons"
n_samples = 100
val_size = 0.2
test_size = 0.2
scale = "standard"

[model]
hidden = [3]
activation = "sigmoid"
init = "xavier_normal"
bias_init = "zeros"

[train]
optimizer = "adam"
lr = 0.01
iterations = 50

[space]
"train.lr" = { values = [0.001, 0.01] }

[seeds]
replicates = 3
root = 0
"""

FULL = """\
# a comment
[study]
name = "lr_hidden_init"
sampler = "tpe"
n_trials = 40
objective = "val_loss"
aggregate = "iqm"
sampler_seed = 3
batch = 4

[data]
dataset = "circles"
features = ["x1", "x0"]
n_samples = 200
noise = 0.05
balance = 0.4
seed = 7
val_size = 0.25
test_size = 30
scale = "minmax"

[model]
hidden = [16, 8]
activation = "relu"
init = "normal:0.01"
bias_init = "const:0.1"
legacy = "posted"

[train]
optimizer = "adam"
lr = 1
epochs = 5
batch_size = 32
l2 = 0.001
clip_norm = 5
beta1 = 0.8
beta2 = 0.99
eps = 1e-7
momentum = 0.5
nesterov = true
rho = 0.95
weight_decay = 0
dtype = "float32"
log_points = 20
log_every = 10
stagnation_tol = 1e-5

[space]
"train.lr" = { low = 1e-4, high = 1.0, log = true }
"model.hidden" = { values = [[3], [16, 16]] }
"model.init" = { values = ["xavier_normal", "he_normal", "normal:0.01"] }
"model.legacy.normalize_hidden" = { values = [true, false] }
"train.batch_size" = { low = 8, high = 64 }
"data.val_size" = { low = 0.1, high = 0.3 }

[seeds]
init = 5
order = 3
split = 2
root = 11
"""


def _case_file(tmp_path: Path, text: str) -> Path:
    (tmp_path / "points.csv").write_text("a,b,label\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    (tmp_path / "tiny.csv").write_text("a,b,label\n1,2,0\n3,4,1\n5,6,0\n")      # too small for any split
    path = tmp_path / "case.toml"
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------------------ valid


def test_full_spec_loads_into_expected_values():
    s = parse_spec(FULL, origin="studies/full.toml")
    assert s.study.name == "lr_hidden_init" and s.study.sampler == "tpe" and s.study.n_trials == 40
    assert (s.study.objective, s.study.aggregate, s.study.direction) == ("val_loss", "iqm", "minimize")
    assert (s.study.sampler_seed, s.study.batch) == (3, 4)
    d = s.data
    assert (d.dataset, d.target, d.features) == ("circles", None, ("x1", "x0"))
    assert (d.n_samples, d.noise, d.balance, d.seed, d.val_size, d.test_size, d.scale) == \
        (200, 0.05, 0.4, 7, 0.25, 30, "minmax")
    m = s.model
    assert m.hidden == (16, 8) and isinstance(m.hidden, tuple)
    assert (m.activation, m.init, m.bias_init) == ("relu", "normal:0.01", "const:0.1")
    assert m.legacy == LegacySection(**{k: True for k in LEGACY_SWITCHES}, clip_threshold=4.5)
    posted = Legacy.posted()
    assert all(getattr(m.legacy, k) == getattr(posted, k) for k in (*Legacy.SWITCHES, "clip_threshold"))
    t = s.train
    assert t.lr == 1.0 and isinstance(t.lr, float) and t.clip_norm == 5.0
    assert (t.iterations, t.epochs, t.batch_size, t.dtype, t.log_points, t.log_every) == \
        (None, 5, 32, "float32", 20, 10)
    assert (t.beta1, t.beta2, t.eps, t.momentum, t.nesterov, t.rho, t.weight_decay, t.stagnation_tol) == \
        (0.8, 0.99, 1e-7, 0.5, True, 0.95, 0.0, 1e-5)
    assert s.space == (
        Dimension("train.lr", low=1e-4, high=1.0, log=True),
        Dimension("model.hidden", values=((3,), (16, 16))),
        Dimension("model.init", values=("xavier_normal", "he_normal", "normal:0.01")),
        Dimension("model.legacy.normalize_hidden", values=(True, False)),
        Dimension("train.batch_size", low=8, high=64, integer=True),
        Dimension("data.val_size", low=0.1, high=0.3),
    )
    assert [dim.column for dim in s.space][:2] == ["lr", "hidden"]
    assert s.seeds == SeedSection(replicates=None, init=5, order=3, split=2, root=11) and s.seeds.crossed
    seeds = s.seeds.tuples()
    assert len(seeds) == 30 and len(set(seeds)) == 30 and seeds[0] == (0, 0, 0)
    assert s.source == FULL


def test_base_and_defaults():
    s = parse_spec(BASE)
    assert s.seeds.tuples() == [(0, 0, 0), (1, 1, 0), (2, 2, 0)] and not s.seeds.crossed
    assert s.space == (Dimension("train.lr", values=(0.001, 0.01)),)
    assert s.model.legacy == LegacySection()
    minimal = parse_spec('[study]\nname = "m"\n')
    assert minimal.seeds.replicates == 10 and len(minimal.seeds.tuples()) == 10
    assert minimal.space == () and minimal.train.iterations == 1000 and minimal.train.epochs is None
    assert minimal.data.dataset == "breast_cancer"


def test_legacy_table_and_switch_names_match_engine():
    assert tuple(LEGACY_SWITCHES) == Legacy.SWITCHES
    text = BASE.replace('bias_init = "zeros"\n',
                        'bias_init = "zeros"\n[model.legacy]\nclip_typo = true\nclip_threshold = 3\n')
    leg = parse_spec(text).model.legacy
    assert leg.clip_typo and leg.clip_threshold == 3.0 and not leg.normalize_hidden


@pytest.mark.parametrize("objective,direction", [
    ("train_acc", "maximize"), ("val_acc", "maximize"), ("test_acc", "maximize"),
    ("train_loss", "minimize"), ("val_loss", "minimize"),
])
def test_default_direction_follows_objective(objective, direction):
    s = parse_spec(BASE.replace('objective = "val_acc"', f'objective = "{objective}"'))
    assert s.study.direction == direction
    explicit = BASE.replace('objective = "val_acc"', f'objective = "{objective}"\ndirection = "{direction}"')
    assert parse_spec(explicit).study.direction == direction


def test_example_study_loads():
    s = load_spec(ROOT / "studies" / "example.toml")
    assert s.study.sampler == "grid" and s.data.dataset == "moons"
    assert {d.key for d in s.space} == {"train.lr", "model.init"}
    assert all(d.values for d in s.space)


def test_hash_ignores_layout_but_not_values():
    s = parse_spec(BASE)
    relaid = "# header comment\n\n" + BASE.replace("lr = 0.01", "lr   =   0.01   # the default lr") \
        .replace("[seeds]\n", "[seeds]  # seeds\n\n")
    assert parse_spec(relaid).hash() == s.hash()
    assert parse_spec(BASE.replace("lr = 0.01", "lr = 0.02")).hash() != s.hash()
    assert parse_spec(BASE.replace("replicates = 3", "replicates = 4")).hash() != s.hash()
    assert parse_spec(BASE.replace("[0.001, 0.01]", "[0.001, 0.1]")).hash() != s.hash()


def test_csv_path_resolved_relative_to_spec(tmp_path):
    text = BASE.replace('dataset = "moons"', 'dataset = "csv:points.csv"\ntarget = "label"')
    s = load_spec(_case_file(tmp_path, text))
    assert s.data.dataset == "csv:" + str((tmp_path / "points.csv").resolve())
    assert s.data.target == "label"


def test_nested_space_keys_and_space_overrides_fixed():
    text = BASE.replace('"train.lr" = { values = [0.001, 0.01] }',
                        'train.iterations = { values = [10, 20] }\n"model.legacy.clip_typo" = { values = [false] }')
    s = parse_spec(text)
    assert [d.key for d in s.space] == ["train.iterations", "model.legacy.clip_typo"]
    assert s.train.iterations == 50          # the section value stays the default
    # optimizer varying: each value is checked against the fixed legacy switches
    text = BASE.replace('"train.lr" = { values = [0.001, 0.01] }',
                        '"train.optimizer" = { values = ["adam", "sgd"] }')
    assert [d.values for d in parse_spec(text).space] == [("adam", "sgd")]
    bad = text.replace("[train]\n", "[model.legacy]\nupdate_times_grad = true\n[train]\n")
    with pytest.raises(SpecError, match=r"space\.\"train\.optimizer\": value 'sgd'.*update_times_grad"):
        parse_spec(bad)


# -------------------------------------------------------------------------------------- malformed

SPACE_LR = '"train.lr" = { values = [0.001, 0.01] }'

# (id, old text in BASE, replacement, substring the message must contain)
BAD = [
    ("invalid_toml", 'name = "t"', 'name = "t', "not valid TOML"),
    ("unknown_section", "[seeds]\n", "[seedz]\n", "unknown section 'seedz'; allowed sections: study, data"),
    ("unknown_section_hint", "[seeds]\n", "[seedz]\n", "did you mean 'seeds'?"),
    ("unknown_key_hint", "iterations = 50", "iteration = 50",
     "train.iteration: unknown key 'iteration'; allowed: optimizer, lr, iterations"),
    ("unknown_key_did_you_mean", "iterations = 50", "iteration = 50", "did you mean 'iterations'?"),
    ("study_missing", '[study]\nname = "t"\nsampler = "grid"\nobjective = "val_acc"\naggregate = "mean"\n', "",
     "[study]: the section is required"),
    ("name_missing", 'name = "t"\n', "", "study.name: required"),
    ("name_slash", 'name = "t"', 'name = "a/b"', "study.name: 'a/b' is not allowed; allowed: a plain folder name"),
    ("name_backslash", 'name = "t"', 'name = "a\\\\b"', "study.name: 'a\\\\b' is not allowed"),
    ("name_dotdot", 'name = "t"', 'name = ".."', "study.name: '..' is not allowed"),
    ("name_dot_start", 'name = "t"', 'name = ".hidden"', "study.name: '.hidden' is not allowed"),
    ("name_empty", 'name = "t"', 'name = ""', "study.name: '' is not allowed"),
    ("sampler_bayes", 'sampler = "grid"', 'sampler = "bayes"',
     "study.sampler: 'bayes' is not allowed; allowed: grid, random, tpe, qmc"),
    ("n_trials_missing_tpe", 'sampler = "grid"', 'sampler = "tpe"', "study.n_trials: required for sampler 'tpe'"),
    ("n_trials_zero", 'sampler = "grid"', 'sampler = "tpe"\nn_trials = 0',
     "study.n_trials: 0 is not allowed; allowed: an integer >= 1"),
    ("n_trials_float", 'sampler = "grid"', 'sampler = "random"\nn_trials = 2.5', "study.n_trials: 2.5 (float)"),
    ("objective_accuracy", 'objective = "val_acc"', 'objective = "accuracy"',
     "study.objective: 'accuracy' is not allowed; allowed: train_acc, val_acc, test_acc, train_loss, val_loss"),
    ("aggregate_max", 'aggregate = "mean"', 'aggregate = "max"',
     "study.aggregate: 'max' is not allowed; allowed: mean, median, iqm, lcb"),
    ("direction_contradicts_acc", 'aggregate = "mean"', 'aggregate = "mean"\ndirection = "minimize"',
     "study.direction: 'minimize' contradicts objective 'val_acc'; allowed: 'maximize'"),
    ("direction_contradicts_loss", 'objective = "val_acc"', 'objective = "val_loss"\ndirection = "maximize"',
     "study.direction: 'maximize' contradicts objective 'val_loss'"),
    ("direction_bad", 'aggregate = "mean"', 'aggregate = "mean"\ndirection = "up"',
     "study.direction: 'up' is not allowed; allowed: maximize, minimize"),
    ("sampler_seed_negative", 'aggregate = "mean"', 'aggregate = "mean"\nsampler_seed = -1',
     "study.sampler_seed: -1 is not allowed; allowed: an integer >= 0"),
    ("batch_zero", 'aggregate = "mean"', 'aggregate = "mean"\nbatch = 0', "study.batch: 0 is not allowed"),
    ("dataset_mnist", 'dataset = "moons"', 'dataset = "mnist"',
     "data.dataset: 'mnist' is not allowed; allowed: blobs, breast_cancer, circles, digits"),
    ("dataset_not_string", 'dataset = "moons"', "dataset = 3", "data.dataset: 3 is not allowed"),
    ("csv_missing_file", 'dataset = "moons"', 'dataset = "csv:nope.csv"\ntarget = "label"',
     "data.dataset: 'csv:nope.csv': CSV file not found"),
    ("csv_without_target", 'dataset = "moons"', 'dataset = "csv:points.csv"',
     "data.target: required for csv: data sets"),
    ("csv_unknown_target", 'dataset = "moons"', 'dataset = "csv:points.csv"\ntarget = "y"',
     "data.target: dataset 'csv:"),
    ("csv_unknown_feature", 'dataset = "moons"', 'dataset = "csv:points.csv"\ntarget = "label"\nfeatures = ["zz"]',
     "data.features: "),
    ("target_for_non_csv", 'dataset = "moons"', 'dataset = "moons"\ntarget = "label"',
     "data.target: 'label' is only allowed with 'csv:<path>' data sets, not 'moons'"),
    ("features_not_list", 'dataset = "moons"', 'dataset = "moons"\nfeatures = "x0"',
     "data.features: 'x0' is not allowed; allowed: a non-empty list of column names"),
    ("features_unknown_synthetic", 'dataset = "moons"', 'dataset = "moons"\nfeatures = ["x9"]',
     "data.features: "),
    ("n_samples_small", "n_samples = 100", "n_samples = 2", "data.n_samples: 2 is not allowed; allowed: an integer >= 4"),
    ("n_samples_below_min_rows", "n_samples = 100", "n_samples = 20",
     "data.n_samples: 'moons' is too small for its split: 20 rows (classes 10/10), split by data.val_size 0.2 and "
     "data.test_size 0.2, give 12 train / 4 val / 4 test rows with 6 / 2 / 2 rows of the smallest class; a study "
     "needs at least 30 rows and 2 rows of every class in every part: raise data.n_samples"),
    ("csv_three_rows", 'dataset = "moons"', 'dataset = "csv:tiny.csv"\ntarget = "label"',
     "tiny.csv' is too small for its split: 3 rows (classes 2/1), split by data.val_size 0.2 and data.test_size "
     "0.2, give 1 train / 1 val / 1 test rows with 0 / 0 / 0 rows of the smallest class; a study needs at least "
     "30 rows and 2 rows of every class in every part: add rows to "),
    ("test_part_without_two_of_a_class", "test_size = 0.2", "test_size = 3",
     "data.val_size, data.test_size: 'moons' is too small for its split: 100 rows (classes 50/50), split by "
     "data.val_size 0.2 and data.test_size 3, give 77 train / 20 val / 3 test rows with 38 / 10 / 1 rows of the "
     "smallest class; a study needs at least 30 rows and 2 rows of every class in every part: raise "
     "data.n_samples, or make data.test_size larger"),
    ("noise_negative", "n_samples = 100", "n_samples = 100\nnoise = -0.1", "data.noise: -0.1 is not allowed"),
    ("noise_linear_above_one", 'dataset = "moons"', 'dataset = "linear"\nnoise = 2', "data.noise: noise for 'linear'"),
    ("balance_one", "n_samples = 100", "n_samples = 100\nbalance = 1.0",
     "data.balance: 1.0 is not allowed; allowed: a number in (0, 1)"),
    ("val_size_1_5", "val_size = 0.2", "val_size = 1.5",
     "data.val_size: 1.5 is not allowed; allowed: a fraction in [0, 1) or an integer count >= 0"),
    ("val_size_negative", "val_size = 0.2", "val_size = -3", "data.val_size: -3 is not allowed"),
    ("val_plus_test_ge_1", "val_size = 0.2", "val_size = 0.8",
     "data.val_size + data.test_size: 0.8 + 0.2 leave no training data; their sum must be < 1"),
    ("test_count_too_big", "test_size = 0.2", "test_size = 100", "data.test_size: 100 rows is not allowed"),
    ("counts_leave_nothing", "test_size = 0.2", "test_size = 80",
     "data.val_size + data.test_size: 0.2 + 80 leave no training data"),
    ("scale_zscore", 'scale = "standard"', 'scale = "zscore"',
     "data.scale: 'zscore' is not allowed; allowed: standard, minmax, none"),
    ("hidden_empty", "hidden = [3]", "hidden = []", "model.hidden: [] is not allowed; allowed: a non-empty list"),
    ("hidden_zero", "hidden = [3]", "hidden = [0]", "model.hidden: [0] is not allowed"),
    ("hidden_string", "hidden = [3]", 'hidden = "3"', "model.hidden: '3' is not allowed"),
    ("hidden_int", "hidden = [3]", "hidden = 3", "model.hidden: 3 is not allowed"),
    ("activation_gelu", 'activation = "sigmoid"', 'activation = "gelu"',
     "model.activation: 'gelu' is not allowed; allowed: sigmoid, tanh, relu"),
    ("init_glorot", 'init = "xavier_normal"', 'init = "glorot"', "model.init: unknown init 'glorot'; allowed: "),
    ("init_normal_without_number", 'init = "xavier_normal"', 'init = "normal"',
     "model.init: init 'normal' needs a number, e.g. 'normal:0.01'"),
    ("init_normal_negative", 'init = "xavier_normal"', 'init = "normal:-1"', "model.init: init 'normal:-1'"),
    ("bias_init_he", 'bias_init = "zeros"', 'bias_init = "he_normal"',
     "model.bias_init: unknown bias_init 'he_normal'; allowed: zeros, const:<number>"),
    ("legacy_old", 'bias_init = "zeros"', 'bias_init = "zeros"\nlegacy = "old"',
     "model.legacy: 'old' is not allowed; allowed: 'posted'"),
    ("legacy_unknown_switch", 'bias_init = "zeros"', 'bias_init = "zeros"\n[model.legacy]\nclip_typos = true',
     "model.legacy.clip_typos: unknown key 'clip_typos'; allowed: compounding_bias_correction"),
    ("legacy_switch_not_bool", 'bias_init = "zeros"', 'bias_init = "zeros"\n[model.legacy]\nclip_typo = 1',
     "model.legacy.clip_typo: 1 (int) is not allowed; allowed: true or false"),
    ("clip_typo_without_threshold", 'bias_init = "zeros"', 'bias_init = "zeros"\n[model.legacy]\nclip_typo = true',
     "model.legacy.clip_typo: true needs model.legacy.clip_threshold"),
    ("clip_threshold_zero", 'bias_init = "zeros"', 'bias_init = "zeros"\n[model.legacy]\nclip_threshold = 0',
     "model.legacy.clip_threshold: 0 is not allowed; allowed: a number > 0"),
    ("optimizer_lbfgs", 'optimizer = "adam"', 'optimizer = "lbfgs"',
     "train.optimizer: 'lbfgs' is not allowed; allowed: sgd, momentum, adam, adamw, rmsprop"),
    ("lr_negative", "lr = 0.01", "lr = -1", "train.lr: -1 is not allowed; allowed: a number > 0"),
    ("lr_string", "lr = 0.01", 'lr = "fast"', "train.lr: 'fast' (str) is not a number; allowed: a number > 0"),
    ("lr_bool", "lr = 0.01", "lr = true", "train.lr: True (bool) is not a number"),
    ("lr_inf", "lr = 0.01", "lr = inf", "train.lr: inf is not allowed"),
    ("iterations_and_epochs", "iterations = 50", "iterations = 50\nepochs = 3",
     "train.iterations, train.epochs: give one budget, not both"),
    ("iterations_zero", "iterations = 50", "iterations = 0",
     "train.iterations: 0 is not allowed; allowed: an integer >= 1"),
    ("iterations_float", "iterations = 50", "iterations = 2.5", "train.iterations: 2.5 (float) is not allowed"),
    ("batch_size_zero", "iterations = 50", "iterations = 50\nbatch_size = 0", "train.batch_size: 0 is not allowed"),
    ("l2_negative", "iterations = 50", "iterations = 50\nl2 = -0.1", "train.l2: -0.1 is not allowed; allowed: a number >= 0"),
    ("clip_norm_zero", "iterations = 50", "iterations = 50\nclip_norm = 0", "train.clip_norm: 0 is not allowed"),
    ("beta1_one", "iterations = 50", "iterations = 50\nbeta1 = 1.0",
     "train.beta1: 1.0 is not allowed; allowed: a number in [0, 1)"),
    ("eps_zero", "iterations = 50", "iterations = 50\neps = 0", "train.eps: 0 is not allowed"),
    ("nesterov_string", "iterations = 50", 'iterations = 50\nnesterov = "yes"', "train.nesterov: 'yes' (str)"),
    ("dtype_float16", "iterations = 50", 'iterations = 50\ndtype = "float16"',
     "train.dtype: 'float16' is not allowed; allowed: float64, float32"),
    ("log_points_one", "iterations = 50", "iterations = 50\nlog_points = 1", "train.log_points: 1 is not allowed"),
    ("stagnation_tol_zero", "iterations = 50", "iterations = 50\nstagnation_tol = 0",
     "train.stagnation_tol: 0 is not allowed"),
    ("space_unknown_key", SPACE_LR, '"train.learning_rate" = { values = [0.1] }',
     "space.\"train.learning_rate\": unknown key 'train.learning_rate'"),
    ("space_key_hint", SPACE_LR, '"train.l" = { values = [0.1] }', "did you mean 'train.lr'?"),
    ("space_study_name", SPACE_LR, '"study.name" = { values = ["a", "b"] }',
     "space.\"study.name\": study.* settings cannot vary"),
    ("space_seeds", SPACE_LR, '"seeds.replicates" = { values = [1, 2] }', "seeds.* settings cannot vary"),
    ("space_whole_legacy", SPACE_LR, '"model.legacy" = { values = ["posted"] }', "vary single switches"),
    ("space_not_table", SPACE_LR, '"train.lr" = [0.1, 0.2]', "space.\"train.lr\": [0.1, 0.2] is not allowed"),
    ("space_no_values_or_range", SPACE_LR, '"train.lr" = { }', "space.\"train.lr\": needs values or low/high"),
    ("space_unknown_dim_key", SPACE_LR, '"train.lr" = { vals = [0.1] }',
     "space.\"train.lr\".vals: unknown key 'vals'; allowed: values, low, high, log; did you mean 'values'?"),
    ("space_values_and_range", SPACE_LR, '"train.lr" = { values = [0.1], low = 0.1, high = 1.0 }',
     "give either values or low/high"),
    ("grid_with_range", SPACE_LR, '"train.lr" = { low = 0.001, high = 0.1 }',
     "space.\"train.lr\": the grid sampler needs values = [...] on every dimension"),
    ("values_empty", SPACE_LR, '"train.lr" = { values = [] }',
     "space.\"train.lr\".values: [] is not allowed; allowed: a non-empty list"),
    ("values_duplicate", SPACE_LR, '"train.lr" = { values = [0.1, 0.1] }',
     "space.\"train.lr\".values: 0.1 appears more than once"),
    ("values_duplicate_hidden", SPACE_LR, '"model.hidden" = { values = [[3], [3]] }', "[3] appears more than once"),
    ("values_bad_init", SPACE_LR, '"model.init" = { values = ["he_normal", "glorot"] }',
     "space.\"model.init\": unknown init 'glorot'"),
    ("values_bad_lr", SPACE_LR, '"train.lr" = { values = [0.1, -1] }',
     "space.\"train.lr\": -1 is not allowed; allowed: a number > 0"),
    ("values_bad_hidden", SPACE_LR, '"model.hidden" = { values = [[3], 16] }', "space.\"model.hidden\": 16 is not allowed"),
    ("values_csv_without_target", SPACE_LR, '"data.dataset" = { values = ["moons", "csv:points.csv"] }',
     "space.\"data.dataset\": value 'csv:"),
    ("values_epochs_with_fixed_iterations", SPACE_LR, '"train.epochs" = { values = [1, 2] }',
     "space.\"train.epochs\": value 1: train.iterations, train.epochs: give one budget"),
    ("values_bad_val_size", SPACE_LR, '"data.val_size" = { values = [0.2, 0.9] }',
     "space.\"data.val_size\": value 0.9: data.val_size + data.test_size"),
    ("values_n_samples_too_small", SPACE_LR, '"data.n_samples" = { values = [100, 10] }',
     "space.\"data.n_samples\": value 10: data.n_samples: 'moons' is too small for its split: 10 rows"),
    ("replicates_zero", "replicates = 3", "replicates = 0",
     "seeds.replicates: 0 is not allowed; allowed: an integer >= 1"),
    ("replicates_bool", "replicates = 3", "replicates = true",
     "seeds.replicates: True (bool) is not allowed; allowed: an integer >= 1"),
    ("replicates_with_crossed", "replicates = 3", "replicates = 3\ninit = 2\norder = 2\nsplit = 2",
     "seeds.replicates: give either replicates or the crossed design"),
    ("crossed_missing_split", "replicates = 3", "init = 2\norder = 2",
     "seeds.split: the crossed design needs all of seeds.init, seeds.order, seeds.split (missing split)"),
    ("crossed_zero", "replicates = 3", "init = 0\norder = 2\nsplit = 1", "seeds.init: 0 is not allowed"),
    ("root_negative", "root = 0", "root = -1", "seeds.root: -1 is not allowed; allowed: an integer >= 0"),
    ("seeds_unknown_key", "root = 0", "roots = 0", "seeds.roots: unknown key 'roots'"),
]

# cases needing more than one edit: (id, [(old, new), ...], expected)
RANDOM = [('sampler = "grid"', 'sampler = "random"\nn_trials = 5')]
BAD_MULTI = [
    ("adam_quirk_with_sgd", [('optimizer = "adam"', 'optimizer = "sgd"'),
                             ('bias_init = "zeros"', 'bias_init = "zeros"\nlegacy = { update_times_grad = true }')],
     "model.legacy.update_times_grad: the legacy Adam quirk needs train.optimizer 'adam', got 'sgd'"),
    ("section_not_table", [("[seeds]\nreplicates = 3\nroot = 0\n", ""), ("[study]\n", "seeds = 3\n[study]\n")],
     "seeds: 3 is not allowed; [seeds] must be a table"),
    ("range_low_ge_high", RANDOM + [(SPACE_LR, '"train.lr" = { low = 0.1, high = 0.01 }')],
     "space.\"train.lr\": low 0.1 must be < high 0.01"),
    ("range_log_low_zero", RANDOM + [(SPACE_LR, '"train.l2" = { low = 0, high = 0.1, log = true }')],
     "space.\"train.l2\": a log range needs low > 0, got low 0.0"),
    ("range_low_invalid", RANDOM + [(SPACE_LR, '"train.lr" = { low = -1, high = 0.1 }')],
     "space.\"train.lr\".low: -1 is not allowed; allowed: a number > 0"),
    ("range_missing_high", RANDOM + [(SPACE_LR, '"train.lr" = { low = 0.1 }')],
     "space.\"train.lr\": a range needs both low and high, high is missing"),
    ("range_log_not_bool", RANDOM + [(SPACE_LR, '"train.lr" = { low = 0.1, high = 1, log = 1 }')],
     "space.\"train.lr\".log: 1 (int) is not allowed; allowed: true or false"),
    ("range_on_init", RANDOM + [(SPACE_LR, '"model.init" = { low = 0.1, high = 1 }')],
     "space.\"model.init\": a low/high range is not allowed for a non-numeric field"),
    ("range_on_hidden", RANDOM + [(SPACE_LR, '"model.hidden" = { low = 1, high = 8 }')],
     "space.\"model.hidden\": a low/high range is not allowed"),
    ("int_range_float_bounds", RANDOM + [(SPACE_LR, '"train.batch_size" = { low = 1.5, high = 8 }')],
     "space.\"train.batch_size\".low: 1.5 (float) is not allowed; allowed: an integer >= 1"),
    ("empty_space_random", RANDOM + [(SPACE_LR, "")],
     "space: sampler 'random' needs at least one dimension"),
    ("real_set_val_part_too_small", [('dataset = "moons"', 'dataset = "iris"'), ("val_size = 0.2", "val_size = 0.01")],
     "data.val_size, data.test_size: 'iris' is too small for its split: 150 rows (classes 50/50/50), split by "
     "data.val_size 0.01 and data.test_size 0.2, give 118 train / 2 val / 30 test rows with 39 / 0 / 10 rows of "
     "the smallest class; a study needs at least 30 rows and 2 rows of every class in every part: make "
     "data.val_size larger"),
    ("posted_with_rmsprop", [('optimizer = "adam"', 'optimizer = "rmsprop"'),
                             ('bias_init = "zeros"', 'bias_init = "zeros"\nlegacy = "posted"')],
     "model.legacy.compounding_bias_correction: the legacy Adam quirk needs train.optimizer 'adam', got 'rmsprop'"),
]
CASES = [(i, [(old, new)], expected) for i, old, new, expected in BAD] + BAD_MULTI


def test_table_is_large_and_ids_unique():
    assert len(CASES) >= 30
    assert len({c[0] for c in CASES}) == len(CASES)
    assert parse_spec(BASE)   # the base itself is valid


@pytest.mark.parametrize("edits,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_malformed_spec_is_rejected_with_a_named_field(tmp_path, edits, expected):
    text = BASE
    for old, new in edits:
        assert old in text, f"edit target {old!r} not in the base spec"
        text = text.replace(old, new, 1)
    path = _case_file(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = str(info.value)
    assert message.startswith(f"{path}: "), message
    assert expected in message, message
    assert "\n" not in message.split(": ", 1)[1] or "TOML" in message


def test_missing_spec_file(tmp_path):
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(tmp_path / "nope.toml")


def test_non_utf8_spec_names_the_file_and_the_byte(tmp_path):
    path = tmp_path / "x.toml"
    path.write_bytes(b"\xff\xfe\x00binary")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value) == f"spec {path} is not a UTF-8 text file (byte 0xff at position 0): save it as UTF-8 TOML"
    latin1 = BASE.replace('name = "t"', 'name = "t\xe9"').encode("latin-1")      # an editor's Latin-1 é
    path.write_bytes(latin1)
    at = latin1.index(b"\xe9")
    with pytest.raises(SpecError, match=rf"\(byte 0xe9 at position {at}\): save it as UTF-8 TOML$"):
        load_spec(path)
    with pytest.raises(SpecError, match=rf"spec {tmp_path} cannot be read \(Is a directory\)"):
        load_spec(tmp_path)


def test_utf8_spec_is_read_as_utf8_with_any_newlines(tmp_path):
    text = "# café, naïve, études: ☃\n" + BASE
    path = tmp_path / "u.toml"
    path.write_bytes(text.replace("\n", "\r\n").encode("utf-8"))
    spec = load_spec(path)
    assert spec.source == text and spec.hash() == parse_spec(BASE).hash()
