"""The program file (``program.toml``): what one loyalty program calls its products, tiers, channels, regions.

A :class:`Program` declares every vocabulary the tables use (each *listed*: values outside it are
quarantined, or *open*: any non-empty value is accepted and the report lists the values seen), the
product hierarchy (levels, coarsest first), the dayparts and the program's economics. The built-in
sample program is one such file (in ``data_contracts/programs/``). Reading is pure
(text in, model out); :func:`load_program` is the one place that opens a program file.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

PROGRAM_FILE = "program.toml"
PROGRAMS_DIR = Path(__file__).resolve().parent / "programs"
COFFEE_PROGRAM_PATH = PROGRAMS_DIR / "coffee.toml"

# Vocabulary keys a column can refer to (schema.Column.vocabulary).
HIERARCHY = "hierarchy"  # a node of any hierarchy level
VOCABULARY_KEYS = ("tiers", "purchase_channels", "offer_channels", "regions", "offer_types", HIERARCHY)



def _name(description: str):
    return Field(min_length=1, pattern=r"^[A-Za-z0-9_][A-Za-z0-9_ .&/+-]*$", description=description)


class ProgramError(ValueError):
    """A program file is missing, unreadable or breaks the program schema; names the key."""

    def __init__(self, source: str, problems: list[str]):
        self.source, self.problems = source, list(problems)
        listed = "; ".join(problems)
        super().__init__(
            f"program file '{source}': {listed}. Fix the file (see README 'Bring your own program') "
            "or write a new one with `rewards init DIR`"
        )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Vocabulary(_Strict):
    """The values a column may hold: ``listed`` (only these) or ``open`` (any non-empty value)."""

    kind: Literal["listed", "open"] = Field(description="listed: only `values`; open: any non-empty value.")
    values: list[str] = Field(default_factory=list, description="The allowed values (listed only).")

    @model_validator(mode="after")
    def _values_match_kind(self) -> Vocabulary:
        _check_values(self.kind, self.values)
        return self

    @property
    def allowed(self) -> tuple[str, ...] | None:
        """The allowed values, or None when any non-empty value is accepted."""
        return tuple(self.values) if self.kind == "listed" else None


class Tiers(_Strict):
    """Loyalty tiers, lowest first; ``none`` for a program without tiers."""

    kind: Literal["listed", "open", "none"] = Field(description="listed (ordered), open, or none (no tiers).")
    values: list[str] = Field(default_factory=list, description="Tier names, lowest first (listed only).")
    points: dict[str, int] = Field(
        default_factory=dict,
        description="Optional (listed tiers only): tier -> the points balance that marks it, one per tier, "
        "rising with the tier; the `points_to_next_tier` feature measures against them (absent without them).",
    )

    @model_validator(mode="after")
    def _values_match_kind(self) -> Tiers:
        _check_values("open" if self.kind == "none" else self.kind, self.values)
        if self.points:
            if self.kind != "listed":
                raise ValueError(f"'points' needs kind = \"listed\" (ordered tiers), found kind = \"{self.kind}\"")
            if sorted(self.points) != sorted(self.values):
                raise ValueError(f"'points' must give one value per tier {self.values}, found {sorted(self.points)}")
            marks = [self.points[t] for t in self.values]
            if any(b < a for a, b in zip(marks, marks[1:])) or marks[0] < 0:
                raise ValueError(f"'points' must be >= 0 and rise with the tiers (lowest first), found {marks}")
        return self

    @property
    def allowed(self) -> tuple[str, ...] | None:
        return tuple(self.values) if self.kind == "listed" else None


def _check_values(kind: str, values: list[str]) -> None:
    if kind == "listed":
        if not values:
            raise ValueError("a listed vocabulary needs at least one value in 'values'")
        if any(not v.strip() for v in values):
            raise ValueError("values must be non-empty text")
        dupes = sorted({v for v in values if values.count(v) > 1})
        if dupes:
            raise ValueError(f"values must be unique, found {dupes} more than once")
    elif values:
        raise ValueError(f"'values' is only for kind = \"listed\", found {len(values)} values with kind = \"{kind}\"")


class Hierarchy(_Strict):
    """Product hierarchy levels, coarsest first; each level's nodes listed or open."""

    levels: list[str] = Field(min_length=1, description="Level names, coarsest first, e.g. ['department', 'commodity'].")
    nodes: dict[str, Vocabulary] = Field(
        default_factory=dict, description="Per level, its nodes (a level not named here is open)."
    )

    @model_validator(mode="after")
    def _levels_known(self) -> Hierarchy:
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"levels must be unique, found {self.levels}")
        reserved = {"product_id"}
        if reserved & set(self.levels):
            raise ValueError(f"a level cannot be called {sorted(reserved & set(self.levels))}")
        unknown = sorted(set(self.nodes) - set(self.levels))
        if unknown:
            raise ValueError(f"nodes given for {unknown}, which are not among the levels {self.levels}")
        return self

    def level(self, name: str) -> Vocabulary:
        return self.nodes.get(name, Vocabulary(kind="open"))


class Daypart(_Strict):
    """A part of the day, [start_hour, end_hour): together the dayparts cover hours 0 to 24 in order."""

    name: str = _name("Daypart name, e.g. 'morning'.")
    start_hour: float = Field(ge=0, lt=24, description="First hour of the part (0 <= h < 24).")
    end_hour: float = Field(gt=0, le=24, description="Hour the part ends, exclusive (0 < h <= 24).")


class Economics(_Strict):
    """What the program earns and costs (ROI and policy use these)."""

    currency: str = Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", description="ISO 4217 code, e.g. EUR.")
    operating_cost_per_month: float = Field(ge=0, description="Running cost of the program per month, in currency.")
    gross_margin_rate: float = Field(ge=0, le=1, description="Share of a sale's amount kept as gross margin.")
    gross_margin_by_node: dict[str, float] = Field(
        default_factory=dict, description="Optional: hierarchy node -> its own gross margin rate."
    )
    exchange_rates: dict[str, float] = Field(
        default_factory=dict,
        description="Optional: currency code -> units of `currency` per unit of it; `rewards import` converts "
        "amounts in a listed currency and quarantines those in a currency not listed.",
    )

    @field_validator("exchange_rates")
    @classmethod
    def _codes_and_rates(cls, rates: dict[str, float]) -> dict[str, float]:
        codes = sorted(k for k in rates if not re.fullmatch(r"[A-Z]{3}", k))
        if codes:
            raise ValueError(f"keys must be ISO 4217 codes like USD, found {codes}")
        bad = {k: v for k, v in rates.items() if not v > 0}
        if bad:
            raise ValueError(f"rates must be positive numbers, found {bad}")
        return rates

    @model_validator(mode="after")
    def _rates(self) -> Economics:
        bad = {k: v for k, v in self.gross_margin_by_node.items() if not 0 <= v <= 1}
        if bad:
            raise ValueError(f"gross_margin_by_node rates must lie in 0..1, found {bad}")
        if self.exchange_rates.get(self.currency, 1.0) != 1.0:
            raise ValueError(
                f"exchange_rates.{self.currency} is the program's own currency and must be 1 (or absent), "
                f"found {self.exchange_rates[self.currency]}"
            )
        return self

    def rate(self, currency: str) -> float | None:
        """Units of the program currency per unit of ``currency``; None when no rate is declared."""
        return 1.0 if currency == self.currency else self.exchange_rates.get(currency)


class HabitFeatures(_Strict):
    """Optional wide profile columns a program asks for by name (default: none, so the profile's width does not
    depend on the taxonomy; per-node history is long in any case)."""

    visit_share_nodes: list[str] = Field(
        default_factory=list, max_length=62,
        description="Nodes (values of transactions.category) that get a `visit_share_<node>` profile column "
        "(share of visits whose basket holds the node); habit tags read them.",
    )
    attach_pairs: list[Annotated[list[str], Field(min_length=2, max_length=2)]] = Field(
        default_factory=list, max_length=30,
        description="[target, given] node pairs that get an `attach_<target>_given_<given>` profile column: "
        "P(target in basket | given in basket).",
    )

    @model_validator(mode="after")
    def _distinct_nodes(self) -> HabitFeatures:
        twice = sorted({n for n in self.visit_share_nodes if self.visit_share_nodes.count(n) > 1})
        if twice:
            raise ValueError(f"visit_share_nodes must not repeat a node, found {twice}")
        if len(self.nodes) > 62:
            raise ValueError(f"visit_share_nodes and attach_pairs may name at most 62 nodes in all, found {len(self.nodes)}")
        return self

    @property
    def nodes(self) -> tuple[str, ...]:
        """Every node these columns read, in declaration order (visit-share nodes first)."""
        return tuple(dict.fromkeys([*self.visit_share_nodes, *(n for pair in self.attach_pairs for n in pair)]))


class CustomerDefaults(_Strict):
    """What is assumed about members when the customers table (or a column of it) is absent."""

    marketing_consent: bool = Field(False, description="Consent assumed when the column is absent.")


class Program(_Strict):
    """One loyalty program: its vocabularies, hierarchy, dayparts and economics."""

    name: str = _name("Short name of the program.")
    description: str = Field("", description="What the program is, in a sentence.")
    hierarchy: Hierarchy
    tiers: Tiers
    purchase_channels: Vocabulary = Field(description="Where orders are placed (transactions.channel).")
    offer_channels: Vocabulary = Field(description="Where offers are shown or sent (offers.channels, offer_events.channel).")
    regions: Vocabulary = Field(description="Members' home regions (customers.region).")
    offer_types: Vocabulary = Field(description="Kinds of reward (offers.offer_type).")
    dayparts: list[Daypart] = Field(min_length=1, description="Parts of the day habits and reasons are named by.")
    customers: CustomerDefaults = Field(default_factory=CustomerDefaults)
    habits: HabitFeatures = Field(default_factory=HabitFeatures)
    economics: Economics

    _source: str = PrivateAttr(default="<in memory>")

    @model_validator(mode="after")
    def _dayparts_cover_the_day(self) -> Program:
        parts = self.dayparts
        edges = [(p.start_hour, p.end_hour) for p in parts]
        contiguous = all(a[1] == b[0] for a, b in zip(edges, edges[1:]))
        if edges[0][0] != 0 or edges[-1][1] != 24 or not contiguous or any(s >= e for s, e in edges):
            raise ValueError(
                "dayparts must cover the day from hour 0 to 24 in order, each starting where the previous "
                f"ends; found {[(p.name, p.start_hour, p.end_hour) for p in parts]}"
            )
        names = [p.name for p in parts]
        if len(set(names)) != len(names):
            raise ValueError(f"daypart names must be unique, found {names}")
        unknown = sorted(set(self.economics.gross_margin_by_node) - set(self.listed_nodes() or ()))
        if self.listed_nodes() is not None and unknown:
            raise ValueError(f"economics.gross_margin_by_node names {unknown}, which are not hierarchy nodes")
        return self

    @property
    def source(self) -> str:
        """Where the program was read from (a path), for messages."""
        return self._source

    def listed_nodes(self) -> tuple[str, ...] | None:
        """Every node of every level, or None when some level is open."""
        nodes: list[str] = []
        for level in self.hierarchy.levels:
            allowed = self.hierarchy.level(level).allowed
            if allowed is None:
                return None
            nodes += [n for n in allowed if n not in nodes]
        return tuple(nodes)

    def allowed(self, key: str) -> tuple[str, ...] | None:
        """The allowed values of vocabulary ``key`` (see VOCABULARY_KEYS or 'hierarchy.<level>'); None = open."""
        if key == HIERARCHY:
            return self.listed_nodes()
        if key.startswith(HIERARCHY + "."):
            return self.hierarchy.level(key.split(".", 1)[1]).allowed
        if key not in VOCABULARY_KEYS:
            raise KeyError(f"unknown vocabulary '{key}'; expected one of {list(VOCABULARY_KEYS)} or 'hierarchy.<level>'")
        return getattr(self, key).allowed

    def describe_vocabulary(self, key: str) -> str:
        """'vocabulary regions of program file X', for reasons and messages."""
        return f"vocabulary '{key}' of program file '{self.source}'"

    @property
    def lowest_tier(self) -> str | None:
        return self.tiers.values[0] if self.tiers.kind == "listed" else None

    @property
    def ordered_tiers(self) -> tuple[str, ...]:
        """The tiers, lowest first, when listed; () when open or none (no order to use)."""
        return tuple(self.tiers.values) if self.tiers.kind == "listed" else ()

    @property
    def daypart_edges(self) -> tuple[tuple[str, float, float], ...]:
        """(name, start_hour, end_hour) per daypart, in order."""
        return tuple((p.name, p.start_hour, p.end_hour) for p in self.dayparts)


def parse_program(text: str, source: str = "<text>") -> Program:
    """The program declared by TOML ``text``; ProgramError naming each bad key otherwise."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ProgramError(source, [f"not valid TOML: {err}"]) from err
    try:
        program = Program.model_validate(data)
    except ValidationError as err:
        raise ProgramError(source, [_problem(e) for e in err.errors()]) from None
    program._source = source
    return program


def validation_problems(err: ValidationError) -> list[str]:
    """One 'key ...: expected ..., found ...' text per error of a pydantic model (program or mapping)."""
    return [_problem(e) for e in err.errors()]


def _problem(error: dict) -> str:
    key = ".".join(str(p) for p in error["loc"]) or "(top level)"
    if error["type"] == "extra_forbidden":
        return f"unknown key '{key}'; expected only the keys the program schema declares"
    if error["type"] == "missing":
        return f"key '{key}' is missing; expected it to be set"
    message = error["msg"].replace("Input should be", "expected").replace("Value error, ", "")
    found = error.get("input")
    shown = json.dumps(found, default=str) if not isinstance(found, dict) else "a table"
    if len(shown) > 80:
        shown = shown[:77] + "..."
    return f"key '{key}': {message}; found {shown}"


def load_program(path: Path | str) -> Program:
    """Read and check the program file at ``path``."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProgramError(str(path), ["no such file; expected a program.toml"]) from None
    except (OSError, UnicodeDecodeError) as err:
        raise ProgramError(str(path), [f"cannot be read as UTF-8 text: {err}"]) from err
    return parse_program(text, str(path))


@lru_cache(maxsize=1)
def coffee_program() -> Program:
    """The built-in sample program (the scenario's own file): the default for the sample and `make demo`."""
    return load_program(COFFEE_PROGRAM_PATH)


def program_to_toml(program: Program) -> str:
    """The program as TOML text (what `rewards init` writes)."""
    import tomli_w

    return tomli_w.dumps(program.model_dump(mode="json", exclude_defaults=False))


def program_digest(program: Program) -> str:
    """A stable digest of what the program declares (comments and layout do not count): 'sha256:<hex>'."""
    canonical = json.dumps(program.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
