"""Deterministic Cuisine Code rows, produced as COPY text in chunks: the same scale, seed and date give the same bytes.

The generator is written for throughput, because benchmarks load gigabytes with it: every row is one
f-string, timestamps come from lookup tables instead of datetime formatting, and skewed choices use
`random.choices` with cumulative weights (a C bisect per pick). Generated text never holds a tab,
newline or backslash, so it needs no COPY escaping.
"""

from __future__ import annotations

import itertools
import json
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from cuisine_db.seed import words

USERS_PER_SCALE = 1_000
RECIPES_PER_SCALE = 5_000
EXECUTIONS_PER_SCALE = 60_000
ROWS_PER_CHUNK = 4_000
DAY = 86_400
NULL = "\\N"


@dataclass(frozen=True, slots=True)
class Table:
    """One table's columns and its rows as COPY text chunks (generated lazily, in dependency order)."""

    name: str
    columns: tuple[str, ...]
    chunks: Iterator[bytes]


class _Clock:
    """Epoch seconds to `YYYY-MM-DD HH:MM:SS+00` through two lookup tables (datetime is ten times slower)."""

    def __init__(self, first_day: date, days: int) -> None:
        self.base = int(datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC).timestamp())
        self.days = [(first_day + timedelta(days=n)).isoformat() for n in range(days + 1)]
        self.times = [f" {h:02d}:{m:02d}:{s:02d}+00" for h in range(24) for m in range(60) for s in range(60)]

    def text(self, epoch: int) -> str:
        day, second = divmod(epoch - self.base, DAY)
        return self.days[day] + self.times[second]


def _skewed_weights(count: int, exponent: float, rng: random.Random) -> tuple[list[int], list[float]]:
    """A Zipf-like popularity: a few items get most picks. Returns (items in rank order, cumulative weights)."""
    ranked = list(range(1, count + 1))
    rng.shuffle(ranked)
    cumulative = list(itertools.accumulate(1.0 / (rank**exponent) for rank in range(1, count + 1)))
    return ranked, cumulative


def _chunks(rows: Iterator[str]) -> Iterator[bytes]:
    while True:
        batch = list(itertools.islice(rows, ROWS_PER_CHUNK))
        if not batch:
            return
        yield ("\n".join(batch) + "\n").encode()


def _array(items: Sequence[str]) -> str:
    return "{" + ",".join(f'"{item}"' for item in items) + "}"


class CuisineData:
    """The whole data set for one (scale, seed, until). Tables must be consumed in the order `tables()` gives."""

    def __init__(self, scale: int, seed: int = 42, until: date | None = None) -> None:
        if scale < 1:
            raise ValueError("scale must be at least 1")
        self.scale = scale
        self.seed = seed
        self.until = until or datetime.now(UTC).date()
        self.users = USERS_PER_SCALE * scale
        self.recipes = RECIPES_PER_SCALE * scale
        self.executions = EXECUTIONS_PER_SCALE * scale
        first_day = self.until - timedelta(days=3 * 365)
        self.clock = _Clock(first_day, 3 * 365 + 1)
        self.start = self.clock.base
        self.end = self.clock.base + 3 * 365 * DAY
        self.ingredient_names = [
            f"{qualifier}{base}"
            for qualifier in words.INGREDIENT_QUALIFIERS
            for (_, _, _, bases) in words.INGREDIENT_GROUPS
            for base in bases
        ]
        # Filled as the tables are generated; later tables refer to earlier ones.
        self._user_created: list[int] = []
        self._recipe_created: list[int] = []
        self._recipe_owner: list[int] = []
        self._kitchens_of: list[list[int]] = []

    def _rng(self, table: str) -> random.Random:
        # One stream per table, so a change in one table's generator leaves the others' rows alone.
        return random.Random(f"{self.seed}:{table}")

    def tables(self) -> list[Table]:
        """Every table in foreign-key order, each generated only when its chunks are read."""
        return [
            Table("users", ("id", "email", "display_name", "profile", "created_at", "updated_at"), self._users()),
            Table("ingredients", ("id", "name", "category", "default_unit", "density_g_per_ml", "attributes",
                                        "created_at"),
                  self._ingredients()),
            Table("transformations", ("id", "name", "kind", "description", "default_duration_seconds",
                                      "required_equipment", "parameters", "created_at"),
                  self._transformations()),
            Table("recipes", ("id", "user_id", "title", "description", "servings", "visibility", "tags",
                              "created_at", "updated_at"), self._recipes()),
            Table("recipe_steps", ("id", "recipe_id", "position", "transformation_id", "instruction",
                                   "duration_seconds", "settings"), self._steps()),
            Table("recipe_step_ingredients", ("step_id", "ingredient_id", "quantity", "unit"),
                  self._step_ingredients()),
            Table("kitchens", ("id", "user_id", "name", "equipment", "settings", "created_at"), self._kitchens()),
            Table("executions", ("id", "recipe_id", "kitchen_id", "user_id", "status", "started_at", "finished_at",
                                 "result", "rating", "notes"), self._executions()),
        ]

    # --- users, ingredients, transformations ---------------------------------------------------------------
    def _users(self) -> Iterator[bytes]:
        rng = self._rng("users")
        text = self.clock.text

        def rows() -> Iterator[str]:
            for user_id in range(1, self.users + 1):
                first, last = rng.choice(words.FIRST_NAMES), rng.choice(words.LAST_NAMES)
                created = rng.randrange(self.start, self.end - 30 * DAY)
                self._user_created.append(created)
                updated = created + int(rng.random() ** 3 * (self.end - created))
                bio = _prose(rng, 6, 28)
                diets = _json_list(rng.sample(words.DIETS, rng.choice((0, 0, 1, 1, 2))))
                profile = (f'{{"locale": "{rng.choice(words.LOCALES)}", "skill": "{rng.choice(words.SKILLS)}", '
                           f'"diet": {diets}, "newsletter": {"true" if rng.random() < 0.4 else "false"}, '
                           f'"bio": "{bio}"}}')
                email = f"{first.lower()}.{last.lower()}.{user_id}@{rng.choice(words.EMAIL_DOMAINS)}"
                yield f"{user_id}\t{email}\t{first} {last}\t{profile}\t{text(created)}\t{text(updated)}"

        return _chunks(rows())

    def _ingredients(self) -> Iterator[bytes]:
        rng = self._rng("ingredients")
        launched = self.clock.text(self.start)

        def rows() -> Iterator[str]:
            ingredient_id = 0
            for qualifier in words.INGREDIENT_QUALIFIERS:
                for category, unit, density, bases in words.INGREDIENT_GROUPS:
                    for base in bases:
                        ingredient_id += 1
                        attributes = (f'{{"kcal_per_100g": {rng.randrange(5, 900)}, '
                                      f'"allergen": {"true" if category in ("nut", "dairy", "fish") else "false"}, '
                                      f'"shelf_life_days": {rng.randrange(1, 720)}}}')
                        density_text = f"{density:.4f}" if density else NULL
                        yield (f"{ingredient_id}\t{qualifier}{base}\t{category}\t{unit}\t{density_text}\t"
                               f"{attributes}\t{launched}")

        return _chunks(rows())

    def _transformations(self) -> Iterator[bytes]:
        launched = self.clock.text(self.start)

        def rows() -> Iterator[str]:
            for number, (name, kind, seconds, equipment, description) in enumerate(words.TRANSFORMATIONS, 1):
                parameters = json.dumps({"kind": kind, "attended": kind in ("cut", "mix", "assemble")})
                yield (f"{number}\t{name}\t{kind}\t{description}\t{seconds}\t{_array(equipment)}\t{parameters}\t"
                       f"{launched}")

        return _chunks(rows())

    # --- recipes and their steps -------------------------------------------------------------------------
    def _recipes(self) -> Iterator[bytes]:
        rng = self._rng("recipes")
        owners, weights = _skewed_weights(self.users, 1.1, rng)
        text = self.clock.text

        def rows() -> Iterator[str]:
            chosen = rng.choices(owners, cum_weights=weights, k=self.recipes)
            for recipe_id, user_id in enumerate(chosen, start=1):
                since = self._user_created[user_id - 1]
                created = since + int(rng.random() * (self.end - since))
                updated = created + int(rng.random() ** 4 * (self.end - created))
                self._recipe_owner.append(user_id)
                self._recipe_created.append(created)
                main = rng.choice(self.ingredient_names)
                title = f"{rng.choice(words.ADJECTIVES).capitalize()} {main} {rng.choice(words.DISH_TYPES)}"
                description = _prose(rng, 10, 60).capitalize() + "."
                tags = _array(rng.sample(words.TAGS, rng.randrange(0, 4)))
                visibility = rng.choices(("private", "unlisted", "public"), (30, 10, 60))[0]
                yield (f"{recipe_id}\t{user_id}\t{title}\t{description}\t{rng.randrange(1, 13)}\t{visibility}\t"
                       f"{tags}\t{text(created)}\t{text(updated)}")

        return _chunks(rows())

    def _step_counts(self) -> list[int]:
        rng = self._rng("step-counts")
        return rng.choices(range(3, 15), (3, 6, 9, 12, 12, 11, 10, 8, 6, 4, 3, 2), k=self.recipes)

    def _ingredients_of_step(self, step_id: int) -> list[int]:
        """A step's ingredients, derived from its id so that the steps and their ingredients agree."""
        mixed = (step_id * 2_654_435_761 + self.seed * 40_503) & 0xFFFFFFFF
        count = 1 + mixed % 3
        total = len(self.ingredient_names)
        first = (mixed >> 2) % total
        return sorted({(first + k * (97 + (mixed >> 20) % 89)) % total + 1 for k in range(count)})

    def _steps(self) -> Iterator[bytes]:
        rng = self._rng("recipe-steps")
        names = self.ingredient_names

        def rows() -> Iterator[str]:
            step_id = 0
            for recipe_id, count in enumerate(self._step_counts(), start=1):
                for position in range(1, count + 1):
                    step_id += 1
                    number = rng.randrange(len(words.TRANSFORMATIONS))
                    name, kind, seconds = words.TRANSFORMATIONS[number][:3]
                    what = " and ".join(names[i - 1] for i in self._ingredients_of_step(step_id))
                    extra = _prose(rng, 4, 24)
                    instruction = f"{name.capitalize()} the {what}, {extra}."
                    duration = max(0, int(seconds * (0.5 + rng.random())))
                    if kind == "heat":
                        settings = (f'{{"temperature_c": {rng.randrange(60, 260, 5)}, '
                                    f'"level": "{rng.choice(("low", "medium", "high"))}", '
                                    f'"covered": {"true" if rng.random() < 0.3 else "false"}}}')
                    else:
                        settings = f'{{"attended": {"true" if rng.random() < 0.7 else "false"}}}'
                    yield f"{step_id}\t{recipe_id}\t{position}\t{number + 1}\t{instruction}\t{duration}\t{settings}"

        return _chunks(rows())

    def _step_ingredients(self) -> Iterator[bytes]:
        rng = self._rng("recipe-step-ingredients")
        units = [unit for (_, unit, _, bases) in words.INGREDIENT_GROUPS for _ in bases]

        def rows() -> Iterator[str]:
            total_steps = sum(self._step_counts())
            for step_id in range(1, total_steps + 1):
                for ingredient_id in self._ingredients_of_step(step_id):
                    unit = units[(ingredient_id - 1) % len(units)]
                    quantity = rng.randrange(1, 12) if unit == "piece" else round(rng.lognormvariate(4.5, 1.0), 1)
                    yield f"{step_id}\t{ingredient_id}\t{max(quantity, 0.5)}\t{unit}"

        return _chunks(rows())

    # --- kitchens and executions -------------------------------------------------------------------------
    def _kitchens(self) -> Iterator[bytes]:
        rng = self._rng("kitchens")
        text = self.clock.text

        def rows() -> Iterator[str]:
            kitchen_id = 0
            for user_id in range(1, self.users + 1):
                mine: list[int] = []
                count = rng.choices((1, 2, 3), (60, 30, 10))[0]
                for name in rng.sample(words.KITCHEN_NAMES, count):
                    kitchen_id += 1
                    mine.append(kitchen_id)
                    equipment = _array(rng.sample(words.EQUIPMENT, rng.randrange(2, 9)))
                    settings = (f'{{"altitude_m": {rng.randrange(0, 2400)}, "oven_offset_c": {rng.randrange(-15, 16)}, '
                                f'"units": "{rng.choice(("metric", "imperial"))}", '
                                f'"timezone_offset_min": {rng.choice((-480, -300, 0, 60, 120, 330, 540))}}}')
                    created = self._user_created[user_id - 1] + rng.randrange(0, 20 * DAY)
                    yield f"{kitchen_id}\t{user_id}\t{name}\t{equipment}\t{settings}\t{text(created)}"
                self._kitchens_of.append(mine)

        return _chunks(rows())

    def _executions(self) -> Iterator[bytes]:
        rng = self._rng("executions")
        recipes, recipe_weights = _skewed_weights(self.recipes, 0.9, rng)
        cooks, cook_weights = _skewed_weights(self.users, 0.8, rng)
        text = self.clock.text
        window = 2 * 365 * DAY
        first = self.end - window
        statuses = ("succeeded", "failed", "cancelled", "running", "queued")
        status_weights = (86, 7, 5, 1, 1)

        def rows() -> Iterator[str]:
            picked_recipes = rng.choices(recipes, cum_weights=recipe_weights, k=self.executions)
            picked_cooks = rng.choices(cooks, cum_weights=cook_weights, k=self.executions)
            picked_statuses = rng.choices(statuses, status_weights, k=self.executions)
            for number in range(self.executions):
                recipe_id = picked_recipes[number]
                user_id = self._recipe_owner[recipe_id - 1] if rng.random() < 0.5 else picked_cooks[number]
                kitchen_id = rng.choice(self._kitchens_of[user_id - 1])
                # Activity grows over the two years: density rises linearly towards the end.
                since = max(first, self._recipe_created[recipe_id - 1])
                started = since + int(rng.random() ** 0.5 * (self.end - since))
                status = picked_statuses[number]
                device = f"{rng.choice(words.EQUIPMENT).replace(' ', '-')}-{rng.getrandbits(24):06x}"
                if status in ("running", "queued"):
                    finished = NULL
                    result = f'{{"device": "{device}"}}'
                else:
                    took = int(rng.lognormvariate(7.3, 0.8))
                    finished = text(min(started + took, self.end + DAY - 1))
                    if status == "succeeded":
                        probe = ", ".join(f"{rng.uniform(18, 230):.1f}" for _ in range(rng.randrange(3, 9)))
                        result = (f'{{"device": "{device}", "duration_s": {took}, '
                                  f'"steps_completed": {rng.randrange(3, 15)}, '
                                  f'"energy_kwh": {rng.uniform(0.05, 4.5):.3f}, "probe_c": [{probe}]}}')
                    else:
                        result = (f'{{"device": "{device}", "error": "{rng.choice(words.FAILURE_REASONS)}", '
                                  f'"failed_step": {rng.randrange(1, 15)}}}')
                rating = NULL
                if status == "succeeded" and rng.random() < 0.45:
                    rating = str(rng.choices((1, 2, 3, 4, 5), (2, 4, 14, 40, 40))[0])
                notes = NULL
                if rng.random() < 0.25:
                    notes = rng.choice(words.NOTE_OPENERS) + " " + _prose(rng, 3, 30)
                yield (f"{number + 1}\t{recipe_id}\t{kitchen_id}\t{user_id}\t{status}\t{text(started)}\t{finished}\t"
                       f"{result}\t{rating}\t{notes}")

        return _chunks(rows())


def _prose(rng: random.Random, shortest: int, longest: int) -> str:
    return " ".join(rng.choices(words.WORDS, k=rng.randrange(shortest, longest)))


def _json_list(items: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{item}"' for item in items) + "]"
