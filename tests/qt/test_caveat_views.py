"""The caveat sentence of a session's model heads the prediction card and every map popup."""

from __future__ import annotations

from geodesk.domain.model import CAVEAT_TEXT, Prediction, Turn, TurnStatus
from geodesk.qt.session_panel import prediction_card_html
from geodesk.report.map_page import map_state


def _turn(index: int) -> Turn:
    prediction = Prediction(country="Norway", city="Bergen", lat=60.39, lon=5.32)
    return Turn(id=None, session_id=1, index=index, prompt="p", raw_answer="{}", prediction=prediction,
                status=TurnStatus.DONE)


def test_the_card_carries_the_caveat_only_when_there_is_one() -> None:
    prediction = _turn(0).prediction
    for caveat, sentence in CAVEAT_TEXT.items():
        assert sentence in prediction_card_html(prediction, 0, caveat).replace("&#x27;", "'")
    plain = prediction_card_html(prediction, 0, None)
    assert all(sentence not in plain for sentence in CAVEAT_TEXT.values())
    assert "⚠" not in plain and "Turn 1" not in plain and "turn 1" in plain


def test_every_popup_of_a_synthetic_session_starts_with_the_caveat() -> None:
    state = map_state([_turn(0), _turn(1)], caveat="synthetic")
    firsts = [t.label.splitlines()[0] for t in state.turns]
    assert firsts == [f"⚠ {CAVEAT_TEXT['synthetic']}"] * 2
    seconds = [t.label.splitlines()[1] for t in state.turns]
    assert [line.split(":")[0] for line in seconds] == ["Turn 1", "Turn 2"]  # counted from 1
    assert all("⚠" not in t.label for t in map_state([_turn(0)]).turns)
