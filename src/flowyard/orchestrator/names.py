"""Readable generated names for flow runs (``brave-otter``)."""

from __future__ import annotations

import random

ADJECTIVES = (
    "amber brave calm clever daring eager fancy gentle happy jolly keen lively lucky mellow "
    "nimble proud quick quiet rapid shiny silent steady swift tidy vivid witty zesty"
).split()
ANIMALS = (
    "badger bison crane dingo eagle falcon ferret gecko heron ibis jaguar koala lemur lynx "
    "marmot newt ocelot otter panda puffin quail raven salmon tapir toucan viper walrus yak"
).split()


def run_name(rng: random.Random | None = None) -> str:
    pick = (rng or random).choice
    return f"{pick(ADJECTIVES)}-{pick(ANIMALS)}"
