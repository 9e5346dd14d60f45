"""`rewards measure` and `rewards train uplift` take the program's economics from its program file."""

from __future__ import annotations

import pytest
import typer

from data_contracts.program import coffee_program, program_to_toml
from pipelines.measure import program_economics


def _program_dir(tmp_path, **economics):
    program = coffee_program()
    program = program.model_copy(update={"economics": program.economics.model_copy(update=economics)})
    (tmp_path / "program.toml").write_text(program_to_toml(program))
    return tmp_path


def test_economics_come_from_the_data_folders_program_file(tmp_path):
    folder = _program_dir(tmp_path, currency="GBP", operating_cost_per_month=777.0, gross_margin_rate=0.4)
    econ = program_economics(folder)
    assert (econ.currency, econ.operating_cost_per_month, econ.gross_margin_rate) == ("GBP", 777.0, 0.4)
    assert econ.gross_margin_by_node == dict(coffee_program().economics.gross_margin_by_node)


def test_a_command_line_option_overrides_one_key_of_the_program_file(tmp_path):
    folder = _program_dir(tmp_path, currency="GBP", operating_cost_per_month=777.0)
    econ = program_economics(folder, operating_cost_per_month=10.0, currency=None)
    assert (econ.currency, econ.operating_cost_per_month) == ("GBP", 10.0)


def test_without_a_program_file_the_built_in_programs_economics_apply(tmp_path):
    econ = program_economics(tmp_path)
    assert econ.operating_cost_per_month == coffee_program().economics.operating_cost_per_month


def test_a_broken_program_file_exits_2_naming_the_key(tmp_path, capsys):
    (tmp_path / "program.toml").write_text(program_to_toml(coffee_program()).replace("gross_margin_rate = 0.65", "gross_margin_rate = \"high\""))
    with pytest.raises(typer.Exit) as err:
        program_economics(tmp_path)
    assert err.value.exit_code == 2
    assert "gross_margin_rate" in capsys.readouterr().err
