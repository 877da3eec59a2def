"""What one build keeps besides its locks (chartbuild.build.session)."""

import json

from chartbuild.build.session import Session, costs_path


def test_what_charts_took_is_read_once_per_build_and_merged_into_the_kept_costs(tmp_path):
    costs_path(tmp_path).write_text(json.dumps({"shop.revenue": 0.09, "shop.top": 0.05}))
    build = Session(state_dir=tmp_path, output_dir=tmp_path / "out")
    assert build.took("shop.revenue") == 0.09 and build.took("shop.new") is None
    costs_path(tmp_path).write_text("{}")  # read once: every task asks as the build starts
    assert build.took("shop.top") == 0.05
    build.note_made("shop", "new", 0.2)
    build.note_made("shop", "revenue", 0.1)
    build.save_costs()
    kept = json.loads(costs_path(tmp_path).read_text())
    assert kept == {"shop.new": 0.2, "shop.revenue": 0.1, "shop.top": 0.05}
    assert Session(state_dir=tmp_path, output_dir=tmp_path / "out").took("shop.new") == 0.2
