"""The accuracy-budget search: how many of the ranked layers it keeps float, and when."""

from edgeconv.quant.budget import keep_float_until_within

LAYERS = [f"layer{i}" for i in range(20)]


def search(accuracy_by_kept, max_drop=1.0, float_accuracy=0.95):
    tried = []
    result = keep_float_until_within(
        LAYERS, float_accuracy=float_accuracy, max_drop_points=max_drop,
        convert=lambda kept: b"x" * (100 + len(kept)),  # float layers make a bigger file
        accuracy_of=lambda content: accuracy_by_kept(len(content) - 100),
        on_try=lambda k, n: tried.append(k))
    return result, tried


def test_stops_at_the_first_candidate_within_budget():
    result, tried = search(lambda kept: 0.90 if kept < 9 else 0.945)
    assert result.met and tried == [3, 6, 9]  # 20 layers: 3 at a time
    assert result.best.kept_float == tuple(LAYERS[:9])
    assert result.best.size_bytes == 109


def test_without_a_solution_keeps_the_most_accurate_and_says_so():
    result, tried = search(lambda kept: 0.90 + (0.01 if kept == 6 else 0.0))
    assert not result.met
    assert tried[-1] == len(LAYERS)  # every layer float was tried last
    assert result.best.kept_float == tuple(LAYERS[:6]) and result.best.accuracy == 0.91
    assert len(result.made) == 106
