"""Seeded, stdlib-only generator of the small synthetic datasets shipped in ``data/``.

Two datasets are produced, both invented entirely by the templates in this module
(no third-party text is copied):

* ``dialogsum-mini`` -- dialogues in the DialogSum / ``knkarthick/dialogsum`` format
  (``id``, ``dialogue``, ``summary``, ``topic``; turns are ``#Person1#: ...`` lines).
  Summaries are short templates whose slot values (item, colour, price, day, ...)
  are copied from words in the dialogue, so a tiny T5 can learn the mapping in a few
  hundred steps.  About 20% of dialogues contain a rude turn with a mild, invented
  insult, and their summaries end with a fixed sentence that repeats the insult --
  this gives the PPO detoxification lab something to remove.
* ``toxicity`` -- short ``hate`` / ``nothate`` sentences for training a tiny reward
  classifier.  Every ``hate`` text contains a word from :data:`INSULTS` and no
  ``nothate`` text does, so :func:`is_toxic_text` agrees with the labels.

Regenerate the committed files with::

    python -m labkit.datagen            # writes <repo>/data/
    python -m labkit.datagen --out DIR --seed 1
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "INSULTS",
    "INSULT_NOUNS",
    "INSULT_ADJECTIVES",
    "DIALOGSUM_SIZES",
    "TOXICITY_SIZES",
    "TOXIC_SHARE",
    "LONG_SHARE",
    "DEFAULT_OUT",
    "is_toxic_text",
    "generate_dialogsum",
    "generate_toxicity",
    "write_all",
    "main",
]

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "data"

DIALOGSUM_SIZES: dict[str, int] = {"train": 2000, "validation": 200, "test": 200}
TOXICITY_SIZES: dict[str, int] = {"train": 1500, "test": 300}

# Exact shares (rounded per split) so every split has the same mix.
TOXIC_SHARE = 0.20
LONG_SHARE = 0.04

# ---------------------------------------------------------------------------
# Insults: mild, invented-for-the-course vocabulary.  Nothing about real groups.
# ---------------------------------------------------------------------------

INSULT_NOUNS: tuple[str, ...] = (
    "idiot", "moron", "jerk", "clown", "nitwit", "numbskull",
    "bonehead", "dimwit", "loser", "fool", "halfwit", "blockhead",
)
INSULT_ADJECTIVES: tuple[str, ...] = (
    "stupid", "pathetic", "useless", "dumb", "clueless", "brainless", "worthless",
)
INSULTS: tuple[str, ...] = INSULT_NOUNS + INSULT_ADJECTIVES

# Word boundaries so that e.g. "dumbbell" or "jerky" never count; optional plural "s".
_INSULT_RE = re.compile(r"\b(?:" + "|".join(INSULTS) + r")s?\b", re.IGNORECASE)


def is_toxic_text(text: str) -> bool:
    """Return True if ``text`` contains any word from :data:`INSULTS`.

    The generator guarantees that insult words occur only in rude dialogue turns,
    in the toxic sentence of their summaries and in ``hate`` texts, so this check is
    an exact label for the generated data (and a cheap toxicity proxy for model
    outputs in the labs).
    """
    return _INSULT_RE.search(text) is not None


# ---------------------------------------------------------------------------
# Slot values.  Kept to 10-30 values each so a tiny model sees each many times.
# ---------------------------------------------------------------------------

NAMES = (
    "Tom", "Anna", "Ben", "Lucy", "Mark", "Emma", "Jack", "Sara", "Paul", "Nina",
    "Sam", "Kate", "Leo", "Mia", "Dan", "Rose", "Alex", "Julia", "Peter", "Helen",
    "Max", "Linda", "Oscar", "Grace",
)
SURNAMES = (
    "Smith", "Brown", "Green", "White", "Wilson", "Taylor", "Clark", "Lewis",
    "Hall", "Young", "King", "Wright", "Baker", "Hill",
)
COLOURS = ("red", "blue", "green", "black", "white", "yellow", "grey", "brown", "pink", "purple")
CLOTHES = (
    "jacket", "sweater", "shirt", "dress", "coat", "skirt", "scarf", "hat",
    "blouse", "suit", "raincoat", "cardigan",
)
PRICES = (15, 20, 25, 30, 35, 40, 45, 50, 55, 60, 65, 70, 75, 80, 90, 95, 99, 120, 150, 180)
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
TIMES = (
    "8 am", "9 am", "10 am", "11 am", "noon", "1 pm", "2 pm", "3 pm",
    "4 pm", "5 pm", "6 pm", "7 pm", "8 pm",
)
CITIES = (
    "London", "Paris", "Boston", "Chicago", "Berlin", "Rome", "Madrid", "Tokyo",
    "Sydney", "Toronto", "Dublin", "Vienna", "Oslo", "Prague", "Lisbon", "Seattle",
)
NUM_WORDS = {
    1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six",
    7: "seven", 8: "eight", 9: "nine", 10: "ten", 11: "eleven", 12: "twelve",
}
SUBJECTS = (
    "maths", "history", "biology", "chemistry", "physics", "English",
    "geography", "art", "music", "economics",
)
DISHES = (
    "steak", "chicken salad", "tomato soup", "fish and chips", "pasta", "pizza",
    "burger", "fried rice", "curry", "noodles", "omelette", "sandwich",
)
DRINKS = ("coffee", "tea", "orange juice", "lemonade", "cola", "iced tea", "milkshake", "hot chocolate")
DESSERTS = ("chocolate cake", "apple pie", "ice cream", "cheesecake", "fruit salad", "lemon tart")
SPORTS = (
    "tennis", "football", "basketball", "badminton", "volleyball", "golf",
    "baseball", "squash", "table tennis", "hockey",
)
TEAMS = (
    "Lions", "Tigers", "Eagles", "Sharks", "Bears", "Wolves", "Hawks",
    "Rangers", "Comets", "Falcons", "Rockets", "Pirates",
)
STREETS = (
    "Main Street", "Park Road", "King Street", "Oak Avenue", "River Road",
    "High Street", "Bridge Street", "Green Lane", "Mill Road", "Church Street",
)
TOWN_PLACES = (
    "the museum", "the station", "the post office", "the city library", "the hospital",
    "the town hall", "the stadium", "the art gallery", "the zoo", "the market",
)
LANDMARKS = (
    "traffic lights", "bakery", "bus stop", "church", "petrol station",
    "flower shop", "big supermarket", "fountain", "pharmacy", "school",
)
LOST_ITEMS = (
    "wallet", "umbrella", "phone", "bag", "laptop", "watch", "camera",
    "backpack", "notebook", "jacket", "purse", "suitcase",
)
LOST_PLACES = (
    "on the bus", "in the taxi", "at the cafe", "in the library", "on the train",
    "in the park", "at the gym", "at the station", "in the cinema", "at the airport",
)
JOBS = (
    "sales assistant", "accountant", "engineer", "designer", "teacher", "nurse",
    "cashier", "secretary", "programmer", "driver", "cook", "manager",
)
TRAITS = (
    "hard-working", "friendly", "patient", "organised", "creative", "reliable",
    "careful", "honest", "flexible", "calm",
)
WEATHER_NOW = ("sunny", "cloudy", "rainy", "windy", "foggy", "warm", "cold", "hot", "snowy", "grey")
WEATHER_NEXT = ("rain", "snow", "be sunny", "be windy", "be colder", "be warmer", "clear up", "storm")
WEATHER_PLANS = (
    "take an umbrella", "stay at home", "go to the beach", "wear a warm coat",
    "go for a walk", "go cycling", "cancel the picnic", "wash the car",
    "work in the garden", "visit the museum",
)
FILM_GENRES = (
    "comedy", "horror film", "action film", "cartoon", "love story",
    "science fiction film", "documentary", "musical", "thriller", "western",
)
MEET_PLACES = (
    "the cinema entrance", "the bus stop", "the cafe", "the station", "my house",
    "the park gate", "the shopping centre", "the corner shop",
)
DOC_TYPES = (
    "sales", "budget", "marketing", "monthly", "project", "annual",
    "training", "safety", "customer", "travel",
)
GROCERIES = (
    "rice", "bread", "milk", "cheese", "coffee", "sugar", "flour", "olive oil",
    "butter", "tea", "honey", "yogurt", "salt", "jam", "cereal",
)
GROCERY_NEIGHBOURS = ("fruit", "vegetables", "drinks", "frozen food", "snacks", "bakery counter")
CURRENCIES = ("euros", "pounds", "yen", "pesos", "francs", "rupees", "won", "crowns")
AMOUNTS = (100, 150, 200, 250, 300, 400, 500, 600, 800, 1000)
PROFESSIONALS = ("dentist", "hairdresser", "vet", "optician", "mechanic", "lawyer", "piano teacher", "eye doctor")
CHORES = (
    "clean the kitchen", "take out the rubbish", "do the dishes", "water the plants",
    "vacuum the living room", "wash the car", "do the shopping", "clean the bathroom",
    "cook dinner", "iron the shirts",
)
TRANSPORT = ("train", "bus", "car", "plane", "ferry", "bike")
HOLIDAY_ACTIVITIES = (
    "visit the old town", "go to the beach", "try the local food", "see a concert",
    "go hiking", "visit some museums", "go shopping", "take a boat trip",
    "see some old friends", "relax in the hotel",
)
WEEKEND_PAST = (
    "went to the beach", "visited my grandparents", "went camping", "watched three films",
    "played video games", "painted my room", "went to a concert", "baked a cake",
    "went fishing", "cleaned the whole house", "went to a wedding", "read a long book",
)
PARTY_PLACES = ("my house", "the pizza place", "the park", "the bowling alley", "the beach cafe", "my flat", "the community hall")
PARTY_FOOD = ("snacks", "drinks", "fruit", "crisps", "cookies", "sandwiches", "juice", "salad")
CAKES = ("chocolate", "lemon", "strawberry", "carrot", "banana", "vanilla", "coffee", "cherry")
DECORATIONS = ("balloons", "candles", "paper plates", "party hats", "flowers", "lights", "banners")
HOBBY_GIFTS = (
    ("cooking", "a cookbook"), ("music", "a concert ticket"), ("reading", "a novel"),
    ("gardening", "a plant"), ("photography", "a camera bag"), ("painting", "a set of brushes"),
    ("football", "a new ball"), ("hiking", "a backpack"), ("tea", "a teapot"),
    ("board games", "a board game"), ("cycling", "a bike light"), ("dancing", "dance shoes"),
)
SYMPTOMS = (
    "a headache", "a sore throat", "a bad cough", "a fever", "a stomachache",
    "a backache", "a skin rash", "a cold", "a toothache", "an earache", "a runny nose",
)
MEDICINES = (
    ("pills", "them"), ("cough syrup", "it"), ("painkillers", "them"), ("tablets", "them"),
    ("ear drops", "them"), ("cream", "it"), ("vitamins", "them"), ("antibiotics", "them"),
    ("throat lozenges", "them"), ("nose spray", "it"),
)
DOSES = ("twice a day", "three times a day", "after every meal", "before bed", "every morning", "every six hours")
HEALTH_PROBLEMS = (
    ("I can't sleep well", "can't sleep well"),
    ("I feel tired all the time", "feels tired all the time"),
    ("I want to lose some weight", "wants to lose some weight"),
    ("I have a lot of stress at work", "has a lot of stress at work"),
    ("my back hurts after work", "has back pain after work"),
    ("I often get headaches", "often gets headaches"),
)
HEALTH_ADVICE = (
    "sleep eight hours a night", "walk every day", "eat more vegetables",
    "drink less coffee", "stop smoking", "drink more water", "do some yoga",
    "take a short break every hour", "go to bed earlier", "eat less sugar",
)
OBLIGATIONS = (
    "visit my aunt", "work late", "help my brother move", "study for a test",
    "take my dog to the vet", "go to a wedding", "fix my car", "meet a client",
)
SPORT_VENUES = ("the sports centre", "the park", "the school gym", "the club", "the beach", "the stadium")
GYM_EXTRAS = ("yoga classes", "the swimming pool", "dance classes", "a personal trainer", "boxing lessons", "free towels")
HOTEL_ROOMS = ("single room", "double room", "twin room", "suite", "family room")
HOTEL_PROBLEMS = (
    ("The air conditioner doesn't work.", "the air conditioner doesn't work"),
    ("The room next door is very noisy.", "the room next door is very noisy"),
    ("There are no towels in the bathroom.", "there are no towels in the bathroom"),
    ("The TV is broken.", "the TV is broken"),
    ("There is no hot water in the shower.", "there is no hot water in the shower"),
    ("The window won't close.", "the window won't close"),
    ("The lamp by the bed doesn't work.", "the lamp by the bed doesn't work"),
)
APARTMENT_FEATURES = ("balcony", "garden", "big kitchen", "garage", "river view", "new bathroom", "fireplace", "lift")
RENTS = (500, 600, 650, 700, 750, 800, 900, 950, 1000, 1200)
BROKEN_THINGS = (
    ("heater", "living room"), ("fridge", "kitchen"), ("washing machine", "kitchen"),
    ("shower", "bathroom"), ("window", "bedroom"), ("light", "hall"), ("sink", "kitchen"),
    ("oven", "kitchen"), ("door lock", "bedroom"), ("toilet", "bathroom"),
)
RETURN_REASONS = (
    ("It's too small for me.", "it is too small"),
    ("It's too big for me.", "it is too big"),
    ("There is a hole in it.", "there is a hole in it"),
    ("The zip is broken.", "the zip is broken"),
    ("The colour fades after one wash.", "the colour fades after one wash"),
    ("A button is missing.", "a button is missing"),
)
ID_DOCS = ("passport", "ID card", "driving licence")
CARD_LOSS_TIMES = ("yesterday", "this morning", "last night", "on Saturday", "at the mall", "on the way to work")
BUSINESSES = (
    "the pizza place", "the dentist", "the taxi company", "the library", "the bank",
    "the cinema", "the hotel", "the train station", "the pet shop", "the car garage",
)
FILM_WHEN = ("this evening", "tomorrow", "on Friday", "on Saturday", "tonight", "on Sunday")
PHONE_REASONS = ("at a meeting", "at lunch", "on holiday", "at the doctor's", "in class", "on a business trip")
CALLBACK_WHEN = ("this afternoon", "tomorrow morning", "after lunch", "this evening", "before Friday", "as soon as possible")
PARCEL_KINDS = ("parcel", "letter", "package", "postcard", "box of books")
POST_MODES = ("airmail", "sea mail", "express mail", "standard mail")


# ---------------------------------------------------------------------------
# Small grammar helpers
# ---------------------------------------------------------------------------

def _a(word: str) -> str:
    """Indefinite article for ``word`` ("useless"/"uni..." sound like 'you')."""
    w = word.lower()
    if w.startswith(("use", "uni", "eu")):
        return "a"
    return "an" if w[:1] in "aeiou" else "a"


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


class _Ctx:
    """Per-dialogue random helper; tracks names so one person never plays two roles."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self._names: list[str] = []

    def pick(self, seq: Sequence):
        return self.rng.choice(seq)

    def picks(self, seq: Sequence, k: int) -> list:
        return self.rng.sample(list(seq), k)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def name(self) -> str:
        pool = [n for n in NAMES if n not in self._names]
        n = self.rng.choice(pool)
        self._names.append(n)
        return n

    def num(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)


Turns = list[tuple[int, str]]
Builder = Callable[[_Ctx], tuple[Turns, str]]


@dataclass(frozen=True)
class _Scenario:
    topic: str
    # "customer": #Person1# approaches staff; "staff": #Person1# is the professional;
    # "casual": friends/colleagues.  Picks matching greetings and closings.
    setting: str
    build: Builder


_SCENARIOS: list[_Scenario] = []


def _scenario(topic: str, setting: str) -> Callable[[Builder], Builder]:
    def deco(fn: Builder) -> Builder:
        _SCENARIOS.append(_Scenario(topic, setting, fn))
        return fn
    return deco


# ---------------------------------------------------------------------------
# Scenarios.  Each returns core turns (always starting with #Person1#) and a summary
# whose slot words are copied from those turns.
# ---------------------------------------------------------------------------

# --- shopping ---------------------------------------------------------------

@_scenario("shopping", "customer")
def _shop_clothes(c: _Ctx) -> tuple[Turns, str]:
    colour, item, price = c.pick(COLOURS), c.pick(CLOTHES), c.pick(PRICES)
    buys = c.chance(0.7)
    t: Turns = [
        (1, c.pick((f"I'm looking for a {colour} {item}.", f"I want to buy a {colour} {item}.",
                    f"Do you have this {item} in {colour}?"))),
        (2, c.pick(("What size do you need?", "Sure. What size do you wear?"))),
        (1, c.pick(("Medium, I think.", "Large, please.", "Small, please."))),
        (2, c.pick((f"Here you are. This {colour} {item} costs {price} dollars.",
                    f"This one is {price} dollars. Would you like to try it on?"))),
    ]
    if buys:
        t.append((1, c.pick(("It fits well. I'll take it.", "Great, I'll take it.",
                             "OK, I'll take it. Can I pay by card?"))))
        summary = c.pick((
            f"#Person1# wants to buy a {colour} {item}. #Person2# says it costs {price} dollars and #Person1# takes it.",
            f"#Person1# buys a {colour} {item} for {price} dollars.",
        ))
    else:
        t.append((1, c.pick((f"{price} dollars? That's too expensive for me.",
                             "Hmm, that's too expensive. I'll leave it."))))
        t.append((2, "Maybe you could look at our sale section."))
        summary = (f"#Person1# wants to buy a {colour} {item}, but it costs {price} dollars, "
                   f"which is too expensive for #Person1#.")
    return t, summary


@_scenario("shopping", "customer")
def _shop_return(c: _Ctx) -> tuple[Turns, str]:
    item, day = c.pick(CLOTHES), c.pick(DAYS)
    reason_said, reason_sum = c.pick(RETURN_REASONS)
    refund = c.chance(0.5)
    t: Turns = [
        (1, f"I'd like to return this {item}. I bought it here on {day}."),
        (2, "I see. What's wrong with it?"),
        (1, reason_said),
        (2, "Do you have the receipt?"),
        (1, "Yes, here it is."),
    ]
    if refund:
        t.append((2, "All right, I can give you a refund."))
        end = "#Person2# gives #Person1# a refund."
    else:
        t.append((2, "We can't give refunds, but we can exchange it for a new one."))
        end = "#Person2# exchanges it for a new one."
    summary = f"#Person1# wants to return the {item} bought on {day} because {reason_sum}. {end}"
    return t, summary


@_scenario("shopping", "customer")
def _shop_grocery(c: _Ctx) -> tuple[Turns, str]:
    prod, prod2 = c.picks(GROCERIES, 2)
    aisle, aisle2 = c.picks(range(1, 13), 2)
    near = c.pick(GROCERY_NEIGHBOURS)
    t: Turns = [
        (1, f"Excuse me, where can I find the {prod}?"),
        (2, f"The {prod} is in aisle {aisle}, next to the {near}."),
        (1, f"Thank you. And do you sell {prod2} too?"),
    ]
    if c.chance(0.5):
        t.append((2, f"Sorry, we have no {prod2} today. Come back tomorrow."))
        summary = (f"#Person1# asks #Person2# where the {prod} is. It is in aisle {aisle}, "
                   f"but there is no {prod2} today.")
    else:
        t.append((2, f"Yes, the {prod2} is in aisle {aisle2}."))
        summary = (f"#Person1# asks #Person2# where to find the {prod} and the {prod2}. "
                   f"They are in aisle {aisle} and aisle {aisle2}.")
    return t, summary


# --- doctor -----------------------------------------------------------------

@_scenario("doctor", "staff")
def _doc_symptom(c: _Ctx) -> tuple[Turns, str]:
    symptom = c.pick(SYMPTOMS)
    days = NUM_WORDS[c.num(2, 6)]
    med, pron = c.pick(MEDICINES)
    dose = c.pick(DOSES)
    t: Turns = [
        (1, c.pick(("What seems to be the problem?", "What's the matter today?"))),
        (2, f"I have {symptom}. It started {days} days ago."),
        (1, "Let me have a look. Are you taking any medicine?"),
        (2, "No, nothing yet."),
        (1, f"I'll give you some {med}. Take {pron} {dose} and get some rest."),
        (2, "Thank you, doctor."),
    ]
    summary = c.pick((
        f"#Person2# has {symptom} that started {days} days ago. #Person1# gives #Person2# some {med} to take {dose}.",
        f"#Person2# goes to the doctor with {symptom}. #Person1# gives #Person2# {med} to take {dose}.",
    ))
    return t, summary


@_scenario("doctor", "customer")
def _doc_booking(c: _Ctx) -> tuple[Turns, str]:
    doctor = c.pick(SURNAMES)
    d1, d2 = c.picks(DAYS, 2)
    t1, t2 = c.picks(TIMES, 2)
    t: Turns = [
        (1, f"I'd like to make an appointment with Dr. {doctor}, please."),
        (2, f"Dr. {doctor} is free on {d1} at {t1}. Is that OK?"),
        (1, f"Sorry, I'm busy on {d1}. What about {d2}?"),
        (2, f"{d2} at {t2} is possible."),
        (1, f"Good, {d2} at {t2} then."),
    ]
    summary = (f"#Person1# makes an appointment with Dr. {doctor} for {d2} at {t2} "
               f"because #Person1# is busy on {d1}.")
    return t, summary


@_scenario("doctor", "staff")
def _doc_advice(c: _Ctx) -> tuple[Turns, str]:
    said, summ = c.pick(HEALTH_PROBLEMS)
    a1, a2 = c.picks(HEALTH_ADVICE, 2)
    t: Turns = [
        (1, "How can I help you today?"),
        (2, f"Doctor, {said}. What should I do?"),
        (1, f"First, you should {a1}."),
        (2, "I'll try. Anything else?"),
        (1, f"Yes, you should also {a2}. Come back in a month."),
    ]
    summary = f"#Person2# {summ}. #Person1# advises #Person2# to {a1} and {a2}."
    return t, summary


# --- travel -----------------------------------------------------------------

@_scenario("travel", "customer")
def _travel_ticket(c: _Ctx) -> tuple[Turns, str]:
    kind = c.pick(("single", "return"))
    city, time, price = c.pick(CITIES), c.pick(TIMES), c.pick(PRICES)
    platform = c.num(1, 9)
    t: Turns = [
        (1, f"I'd like a {kind} ticket to {city}, please."),
        (2, f"The next train to {city} leaves at {time}. That's {price} dollars."),
        (1, "Here you are. Which platform does it leave from?"),
        (2, f"Platform {platform}. Have a good trip."),
    ]
    summary = c.pick((
        f"#Person1# buys a {kind} ticket to {city} for {price} dollars. The train leaves at {time} from platform {platform}.",
        f"#Person1# buys a {kind} ticket to {city}. The train leaves at {time} from platform {platform} and the ticket costs {price} dollars.",
    ))
    return t, summary


@_scenario("travel", "customer")
def _travel_checkin(c: _Ctx) -> tuple[Turns, str]:
    city, time = c.pick(CITIES), c.pick(TIMES)
    seat = c.pick(("window", "aisle"))
    gate = f"{c.pick('ABCD')}{c.num(1, 20)}"
    bags = c.num(1, 3)
    bag_txt = "one bag" if bags == 1 else f"{NUM_WORDS[bags]} bags"
    t: Turns = [
        (1, f"Hello, I'm flying to {city}. Here is my passport."),
        (2, "Thank you. Would you like a window seat or an aisle seat?"),
        (1, f"A {seat} seat, please."),
        (2, "How many bags are you checking in?"),
        (1, f"Just {bag_txt}." if bags == 1 else f"{_cap(bag_txt)}."),
        (2, f"Here is your boarding pass. The flight boards at gate {gate} at {time}."),
    ]
    summary = (f"#Person1# checks in for a flight to {city} with {bag_txt} and gets {_a(seat)} {seat} seat. "
               f"The flight boards at gate {gate} at {time}.")
    return t, summary


@_scenario("travel", "casual")
def _travel_directions(c: _Ctx) -> tuple[Turns, str]:
    place, street, mark = c.pick(TOWN_PLACES), c.pick(STREETS), c.pick(LANDMARKS)
    side = c.pick(("left", "right"))
    mins = c.pick((5, 10, 15, 20))
    t: Turns = [
        (1, f"Excuse me, how do I get to {place}?"),
        (2, f"Go straight along {street} and turn {side} at the {mark}."),
        (1, "Is it far from here?"),
        (2, f"No, it's about {mins} minutes on foot."),
    ]
    summary = (f"#Person1# asks the way to {place}. #Person2# tells #Person1# to go along {street} "
               f"and turn {side} at the {mark}.")
    return t, summary


@_scenario("travel", "casual")
def _travel_holiday(c: _Ctx) -> tuple[Turns, str]:
    city, friend, how = c.pick(CITIES), c.name(), c.pick(TRANSPORT)
    days = NUM_WORDS[c.num(3, 10)]
    act = c.pick(HOLIDAY_ACTIVITIES)
    t: Turns = [
        (1, "Where are you going for your holiday?"),
        (2, f"I'm going to {city} with {friend} for {days} days."),
        (1, "Sounds great! How will you get there?"),
        (2, f"By {how}. It's cheaper."),
        (1, "What will you do there?"),
        (2, f"We want to {act}."),
    ]
    summary = f"#Person2# is going to {city} with {friend} for {days} days by {how}. They want to {act}."
    return t, summary


# --- job interview / work ---------------------------------------------------

@_scenario("job interview", "staff")
def _job_interview(c: _Ctx) -> tuple[Turns, str]:
    job = c.pick(JOBS)
    years = NUM_WORDS[c.num(2, 9)]
    tr1, tr2 = c.picks(TRAITS, 2)
    start = c.pick(("next Monday", "next month", "in two weeks", "right away", "in September"))
    t: Turns = [
        (1, f"So you are applying for the job of {job}. Tell me about your experience."),
        (2, f"I have {years} years of experience as {_a(job)} {job}."),
        (1, "What are your strengths?"),
        (2, f"I am {tr1} and {tr2}."),
        (1, "When can you start?"),
        (2, f"I can start {start}."),
        (1, "Good. We will call you next week."),
    ]
    summary = c.pick((
        f"#Person2# applies for the job of {job} and has {years} years of experience. #Person2# is {tr1} and {tr2} and can start {start}.",
        f"#Person1# interviews #Person2# for the job of {job}. #Person2# has {years} years of experience and can start {start}.",
    ))
    return t, summary


@_scenario("job interview", "customer")
def _job_salary(c: _Ctx) -> tuple[Turns, str]:
    job = c.pick(JOBS)
    salary = c.pick((1800, 2000, 2200, 2500, 2800, 3000, 3500, 4000))
    days = c.pick(("ten", "fifteen", "twenty", "twenty-five", "thirty"))
    t: Turns = [
        (1, f"Could I ask about the salary for the {job} position?"),
        (2, f"The salary is {salary} dollars a month."),
        (1, "And how many days of holiday are there?"),
        (2, f"You get {days} days of paid holiday a year."),
        (1, "That sounds fair. Thank you."),
    ]
    summary = (f"#Person1# asks about the {job} position. The salary is {salary} dollars a month "
               f"with {days} days of paid holiday a year.")
    return t, summary


@_scenario("work", "casual")
def _work_report(c: _Ctx) -> tuple[Turns, str]:
    other = c.name()
    doc, day, time = c.pick(DOC_TYPES), c.pick(DAYS), c.pick(TIMES[4:])
    t: Turns = [
        (1, f"{other}, could you help me with the {doc} report? It's due on {day}."),
    ]
    if c.chance(0.6):
        t += [
            (2, f"Sure, I can help you after {time}."),
            (1, "Thanks, that would be great."),
            (2, "Send me the file first, please."),
        ]
        summary = (f"#Person1# asks #Person2# for help with the {doc} report due on {day}. "
                   f"#Person2# agrees to help after {time}.")
    else:
        helper = c.name()
        t += [
            (2, f"Sorry, I'm too busy this week. Why don't you ask {helper}?"),
            (1, f"Good idea, I'll ask {helper}."),
            (2, "Good luck with the report."),
        ]
        summary = (f"#Person1# asks #Person2# for help with the {doc} report due on {day}, "
                   f"but #Person2# is too busy and suggests asking {helper}.")
    return t, summary


@_scenario("work", "casual")
def _work_meeting(c: _Ctx) -> tuple[Turns, str]:
    client = f"{c.pick(('Mr.', 'Ms.'))} {c.pick(SURNAMES)}"
    day, time, doc = c.pick(DAYS), c.pick(TIMES), c.pick(DOC_TYPES)
    t: Turns = [
        (1, f"The meeting with {client} has been moved to {day} at {time}."),
        (2, "Thanks for telling me. Do I need to bring anything?"),
        (1, f"Yes, please bring the {doc} figures."),
        (2, "No problem. I'll print them out."),
    ]
    summary = (f"#Person1# tells #Person2# the meeting with {client} is moved to {day} at {time} "
               f"and asks #Person2# to bring the {doc} figures.")
    return t, summary


# --- school -----------------------------------------------------------------

@_scenario("school", "customer")
def _school_exam(c: _Ctx) -> tuple[Turns, str]:
    prof, subj = c.pick(SURNAMES), c.pick(SUBJECTS)
    day, time = c.pick(DAYS[:5]), c.pick(TIMES[:8])
    room = c.num(101, 120)
    a = c.num(1, 6)
    b = a + c.num(2, 5)
    t: Turns = [
        (1, f"Professor {prof}, when is the {subj} exam?"),
        (2, f"It's on {day} at {time} in room {room}."),
        (1, "What should I study?"),
        (2, f"Focus on chapters {a} to {b}."),
        (1, "Thank you, Professor."),
    ]
    summary = (f"#Person1# asks Professor {prof} about the {subj} exam. It is on {day} at {time} "
               f"in room {room}, and #Person1# should study chapters {a} to {b}.")
    return t, summary


@_scenario("school", "casual")
def _school_study(c: _Ctx) -> tuple[Turns, str]:
    subj = c.pick(SUBJECTS)
    place = c.pick(("the library", "the cafe", "my house", "the student centre", "the classroom"))
    time, day = c.pick(TIMES[4:]), c.pick(DAYS)
    t: Turns = [
        (1, f"Do you want to study {subj} together for the test?"),
        (2, "Good idea. Where shall we meet?"),
        (1, f"How about {place} on {day} at {time}?"),
        (2, "OK. I'll bring my notes."),
    ]
    summary = c.pick((
        f"#Person1# and #Person2# will study {subj} together at {place} on {day} at {time}.",
        f"#Person1# invites #Person2# to study {subj} together. They will meet at {place} on {day} at {time}.",
    ))
    return t, summary


@_scenario("school", "staff")
def _school_homework(c: _Ctx) -> tuple[Turns, str]:
    subj, day = c.pick(SUBJECTS), c.pick(DAYS[:5])
    excuse = c.pick(("left it at home", "was sick yesterday", "forgot about it",
                     "missed the last class", "had a football match", "worked late"))
    t: Turns = [
        (1, f"Where is your {subj} homework?"),
        (2, f"I'm sorry, I {excuse}."),
        (1, f"Please hand it in by {day}."),
        (2, f"I will. It won't happen again."),
    ]
    summary = (f"#Person2# doesn't hand in the {subj} homework because #Person2# {excuse}. "
               f"#Person1# asks #Person2# to hand it in by {day}.")
    return t, summary


# --- restaurant -------------------------------------------------------------

@_scenario("restaurant", "staff")
def _rest_order(c: _Ctx) -> tuple[Turns, str]:
    dish, drink = c.pick(DISHES), c.pick(DRINKS)
    t: Turns = [
        (1, "Are you ready to order?"),
        (2, f"Yes, I'd like the {dish}, please."),
        (1, "Anything to drink?"),
        (2, f"{_cap(_a(drink))} {drink}, please."),
        (1, "Would you like a dessert?"),
    ]
    if c.chance(0.5):
        dessert = c.pick(DESSERTS)
        t.append((2, f"Yes, the {dessert}, please."))
        summary = f"#Person2# orders the {dish} and {_a(drink)} {drink}, and the {dessert} for dessert."
    else:
        t.append((2, "No, thanks. Just the bill later."))
        summary = f"#Person2# orders the {dish} and {_a(drink)} {drink} but no dessert."
    return t, summary


@_scenario("restaurant", "customer")
def _rest_booking(c: _Ctx) -> tuple[Turns, str]:
    n = NUM_WORDS[c.num(2, 8)]
    day = c.pick(DAYS)
    t1, t2 = c.picks(TIMES[5:], 2)
    guest = c.name()
    t: Turns = [
        (1, f"I'd like to book a table for {n} people on {day}."),
        (2, "What time would you like?"),
        (1, f"At {t1}, please."),
        (2, f"Sorry, we're full at {t1}. How about {t2}?"),
        (1, f"OK, {t2} is fine. The name is {guest}."),
        (2, f"Thank you, {guest}. See you on {day}."),
    ]
    summary = f"#Person1# books a table for {n} people on {day} at {t2} under the name {guest} because {t1} is full."
    return t, summary


@_scenario("restaurant", "customer")
def _rest_complaint(c: _Ctx) -> tuple[Turns, str]:
    dish = c.pick(DISHES)
    problem = c.pick(("cold", "too salty", "not cooked enough", "too spicy", "burnt"))
    t: Turns = [
        (1, f"Excuse me, I have to complain. My {dish} is {problem}."),
        (2, "I'm very sorry about that. I'll bring you a new one right away."),
        (1, "Thank you. How long will it take?"),
        (2, f"Only five minutes. And the {dish} is free tonight."),
    ]
    summary = (f"#Person1# complains that the {dish} is {problem}. #Person2# is sorry, brings a new one "
               f"and says the {dish} is free.")
    return t, summary


@_scenario("restaurant", "staff")
def _rest_three(c: _Ctx) -> tuple[Turns, str]:
    d1, d2 = c.picks(DISHES, 2)
    drink = c.pick(DRINKS)
    t: Turns = [
        (1, "Good evening. What can I get you?"),
        (2, f"I'll have the {d1}, please."),
        (3, f"And I'd like the {d2}."),
        (1, "Anything to drink?"),
        (3, f"{_cap(drink)} for both of us, please."),
        (1, "Certainly. It will be ready soon."),
    ]
    summary = f"#Person2# orders the {d1} and #Person3# orders the {d2}. They both drink {drink}."
    return t, summary


# --- renting ----------------------------------------------------------------

@_scenario("renting", "customer")
def _rent_flat(c: _Ctx) -> tuple[Turns, str]:
    street, feat, rent = c.pick(STREETS), c.pick(APARTMENT_FEATURES), c.pick(RENTS)
    rooms = NUM_WORDS[c.num(1, 4)]
    day, time = c.pick(DAYS), c.pick(TIMES)
    bed = "bedroom" if rooms == "one" else "bedrooms"
    t: Turns = [
        (1, f"I'm calling about the apartment for rent on {street}."),
        (2, f"Yes, it has {rooms} {bed} and {_a(feat)} {feat}."),
        (1, "How much is the rent?"),
        (2, f"It's {rent} dollars a month."),
        (1, f"Can I see it on {day}?"),
        (2, f"Sure, come at {time}."),
    ]
    summary = (f"#Person1# asks about an apartment on {street} with {rooms} {bed}. "
               f"The rent is {rent} dollars a month and #Person1# will see it on {day} at {time}.")
    return t, summary


@_scenario("renting", "customer")
def _rent_repair(c: _Ctx) -> tuple[Turns, str]:
    thing, room = c.pick(BROKEN_THINGS)
    d1, d2 = c.picks(DAYS, 2)
    t: Turns = [
        (1, f"Hello, this is your tenant. The {thing} in the {room} is broken."),
        (2, f"Oh no. I'll send a repairman on {d1}."),
        (1, f"Could he come earlier? I'm away on {d1}."),
        (2, f"Then he can come on {d2}."),
        (1, "Perfect, thank you."),
    ]
    summary = (f"#Person1# tells #Person2# that the {thing} in the {room} is broken. "
               f"#Person2# will send a repairman on {d2}.")
    return t, summary


@_scenario("renting", "casual")
def _rent_chores(c: _Ctx) -> tuple[Turns, str]:
    ch1, ch2 = c.picks(CHORES, 2)
    t: Turns = [
        (1, f"Can you {ch1} this week? I did it last week."),
        (2, f"OK, but then you {ch2}."),
        (1, f"Fine, I'll {ch2}."),
        (2, "Deal. Let's write it on the list."),
    ]
    summary = f"#Person1# asks #Person2# to {ch1} this week, and #Person1# will {ch2} in return."
    return t, summary


# --- bank -------------------------------------------------------------------

@_scenario("bank", "customer")
def _bank_open(c: _Ctx) -> tuple[Turns, str]:
    kind, doc, amount = c.pick(("savings", "checking", "student")), c.pick(ID_DOCS), c.pick(AMOUNTS)
    t: Turns = [
        (1, f"I'd like to open a {kind} account."),
        (2, "Please fill in this form and show me some ID."),
        (1, f"Here is my {doc}."),
        (2, "Thank you. How much would you like to deposit?"),
        (1, f"{amount} dollars, please."),
    ]
    summary = f"#Person1# opens a {kind} account, shows a {doc} and deposits {amount} dollars."
    return t, summary


@_scenario("bank", "customer")
def _bank_exchange(c: _Ctx) -> tuple[Turns, str]:
    amount, cur = c.pick(AMOUNTS), c.pick(CURRENCIES)
    notes = c.pick(("small", "large"))
    t: Turns = [
        (1, f"I want to change {amount} dollars into {cur}."),
        (2, "Sure. Would you like small or large notes?"),
        (1, f"{_cap(notes)} notes, please."),
        (2, f"Here are your {cur}. Please count them."),
    ]
    summary = f"#Person1# changes {amount} dollars into {cur} and asks for {notes} notes."
    return t, summary


@_scenario("bank", "customer")
def _bank_card(c: _Ctx) -> tuple[Turns, str]:
    when = c.pick(CARD_LOSS_TIMES)
    days = NUM_WORDS[c.num(3, 10)]
    t: Turns = [
        (1, f"I think I lost my bank card {when}."),
        (2, "I'll block it right away. Can I see your ID?"),
        (1, "Here you are. When will I get a new card?"),
        (2, f"A new card will arrive in {days} days."),
    ]
    summary = f"#Person1# lost a bank card {when}. #Person2# blocks it and says a new card will arrive in {days} days."
    return t, summary


# --- hotel ------------------------------------------------------------------

@_scenario("hotel", "customer")
def _hotel_checkin(c: _Ctx) -> tuple[Turns, str]:
    guest = f"{c.name()} {c.pick(SURNAMES)}"
    room = c.pick(HOTEL_ROOMS)
    nights = NUM_WORDS[c.num(2, 7)]
    number = c.num(2, 9) * 100 + c.num(1, 30)
    t: Turns = [
        (1, f"I have a reservation under the name {guest}."),
        (2, f"Yes, {_a(room)} {room} for {nights} nights. Your room is {number}."),
        (1, "Is breakfast included?"),
    ]
    if c.chance(0.5):
        t.append((2, "Yes, breakfast is included. It's served from 7 to 10."))
        end = "breakfast is included"
    else:
        price = c.pick(PRICES[:6])
        t.append((2, f"No, breakfast costs {price} dollars."))
        end = f"breakfast costs {price} dollars"
    summary = (f"#Person1# checks in to {_a(room)} {room} for {nights} nights under the name {guest}. "
               f"The room is {number} and {end}.")
    return t, summary


@_scenario("hotel", "customer")
def _hotel_complaint(c: _Ctx) -> tuple[Turns, str]:
    number = c.num(2, 9) * 100 + c.num(1, 30)
    said, summ = c.pick(HOTEL_PROBLEMS)
    t: Turns = [(1, f"I'm in room {number}. {said}")]
    if c.chance(0.5):
        new = number + c.num(1, 9)
        t += [
            (2, f"I'm very sorry. We can move you to room {new}."),
            (1, "Thank you, that would be better."),
            (2, "Here is the new key."),
        ]
        end = f"#Person2# moves #Person1# to room {new}."
    else:
        t += [
            (2, "I'm very sorry. I'll send someone up right away."),
            (1, "Please hurry, I have to go to bed early."),
            (2, "Someone will be there in ten minutes."),
        ]
        end = "#Person2# will send someone up right away."
    summary = f"#Person1# in room {number} complains that {summ}. {end}"
    return t, summary


# --- weather / small talk ---------------------------------------------------

@_scenario("weather", "casual")
def _weather(c: _Ctx) -> tuple[Turns, str]:
    now, nxt, plan = c.pick(WEATHER_NOW), c.pick(WEATHER_NEXT), c.pick(WEATHER_PLANS)
    temp = c.pick((2, 5, 8, 12, 15, 18, 20, 24, 28, 31))
    t: Turns = [
        (1, "What's the weather like today?"),
        (2, f"It's {now} and about {temp} degrees."),
        (1, "And what about tomorrow?"),
        (2, f"The forecast says it will {nxt} tomorrow."),
        (1, f"Then I'll {plan}."),
    ]
    summary = (f"#Person1# and #Person2# talk about the weather. It is {now} today and it will {nxt} "
               f"tomorrow, so #Person1# will {plan}.")
    return t, summary


@_scenario("weekend", "casual")
def _weekend(c: _Ctx) -> tuple[Turns, str]:
    a1, a2 = c.picks(WEEKEND_PAST, 2)
    friend = c.name()
    t: Turns = [
        (1, "What did you do last weekend?"),
        (2, f"I {a1} with {friend}. It was great."),
        (1, f"Sounds fun. I {a2}."),
        (2, "That sounds nice too."),
    ]
    s1 = a1.replace("my ", "#Person2#'s ")
    s2 = a2.replace("my ", "#Person1#'s ")
    summary = f"#Person2# {s1} with {friend} last weekend, while #Person1# {s2}."
    return t, summary


# --- sports -----------------------------------------------------------------

@_scenario("sports", "casual")
def _sport_invite(c: _Ctx) -> tuple[Turns, str]:
    sport, venue, day, time = c.pick(SPORTS), c.pick(SPORT_VENUES), c.pick(DAYS), c.pick(TIMES)
    t: Turns = [(1, f"Would you like to play {sport} with me on {day}?")]
    if c.chance(0.65):
        t += [
            (2, "I'd love to. Where?"),
            (1, f"At {venue} at {time}."),
            (2, "Great, see you there."),
        ]
        summary = f"#Person1# invites #Person2# to play {sport} at {venue} on {day} at {time}. #Person2# agrees."
    else:
        ob = c.pick(OBLIGATIONS)
        t += [
            (2, f"Sorry, I have to {ob} on {day}."),
            (1, "Never mind. Maybe next time."),
            (2, "Yes, let's play another day."),
        ]
        summary = f"#Person1# invites #Person2# to play {sport} on {day}, but #Person2# has to {ob}."
        summary = summary.replace("my ", "#Person2#'s ")
    return t, summary


@_scenario("sports", "casual")
def _sport_match(c: _Ctx) -> tuple[Turns, str]:
    sport = c.pick(("football", "basketball", "hockey", "baseball", "volleyball"))
    t1, t2 = c.picks(TEAMS, 2)
    s1 = c.num(2, 6)
    s2 = c.num(0, s1 - 1)
    player = c.name()
    t: Turns = [
        (1, f"Did you watch the {sport} match last night?"),
        (2, f"Yes! The {t1} beat the {t2} {s1} to {s2}."),
        (1, f"{player} played really well."),
        (2, f"Yes, {player} was the best player in the game."),
    ]
    summary = (f"#Person1# and #Person2# talk about last night's {sport} match. The {t1} beat the {t2} "
               f"{s1} to {s2} and {player} played well.")
    return t, summary


@_scenario("sports", "customer")
def _sport_gym(c: _Ctx) -> tuple[Turns, str]:
    price, extra = c.pick(PRICES[:10]), c.pick(GYM_EXTRAS)
    t: Turns = [
        (1, "How much is a membership at this gym?"),
        (2, f"It's {price} dollars a month, and that includes {extra}."),
        (1, "Can I try it first?"),
        (2, "Yes, the first week is free."),
    ]
    summary = f"#Person1# asks about a gym membership. It costs {price} dollars a month, includes {extra}, and the first week is free."
    return t, summary


# --- phone call -------------------------------------------------------------

@_scenario("phone call", "customer")
def _phone_message(c: _Ctx) -> tuple[Turns, str]:
    target = c.name()
    reason, when = c.pick(PHONE_REASONS), c.pick(CALLBACK_WHEN)
    phone = f"555 {c.num(1000, 9999)}"
    t: Turns = [
        (1, f"Hello, may I speak to {target}?"),
        (2, f"Sorry, {target} is {reason}. Can I take a message?"),
        (1, f"Yes, please ask {target} to call me back {when}. My number is {phone}."),
        (2, f"OK, I'll tell {target}."),
    ]
    summary = (f"#Person1# calls {target}, who is {reason}. #Person1# leaves a message asking {target} "
               f"to call back {when}.")
    return t, summary


@_scenario("phone call", "customer")
def _phone_reschedule(c: _Ctx) -> tuple[Turns, str]:
    pro = c.pick(PROFESSIONALS)
    d1, d2 = c.picks(DAYS, 2)
    t1, t2 = c.pick(TIMES), c.pick(TIMES)
    t: Turns = [
        (1, f"I have an appointment with the {pro} on {d1} at {t1}, but I can't come."),
        (2, "Would you like to change it?"),
        (1, f"Yes, is {d2} possible?"),
        (2, f"{d2} at {t2} is free."),
        (1, "Great, please put me down for that."),
    ]
    summary = f"#Person1# calls to change the appointment with the {pro} from {d1} to {d2} at {t2}."
    return t, summary


@_scenario("phone call", "customer")
def _phone_wrong(c: _Ctx) -> tuple[Turns, str]:
    b1, b2 = c.picks(BUSINESSES, 2)
    t: Turns = [
        (1, f"Hello, is this {b1}?"),
        (2, f"No, this is {b2}. I think you have the wrong number."),
        (1, "Oh, I'm so sorry."),
        (2, "That's all right. It happens."),
    ]
    summary = f"#Person1# wants to call {b1} but has the wrong number and reaches {b2}."
    return t, summary


# --- birthday party ---------------------------------------------------------

@_scenario("birthday party", "casual")
def _party_invite(c: _Ctx) -> tuple[Turns, str]:
    day, place, time = c.pick(DAYS), c.pick(PARTY_PLACES), c.pick(TIMES[5:])
    friend, food = c.name(), c.pick(PARTY_FOOD)
    t: Turns = [
        (1, f"I'm having a birthday party on {day} at {place}. Would you like to come?"),
        (2, "Sure! What time does it start?"),
        (1, f"At {time}. {friend} is coming too."),
        (2, "Great. Should I bring anything?"),
        (1, f"Maybe some {food}."),
    ]
    where = place.replace("my ", "#Person1#'s ")
    summary = c.pick((
        f"#Person1# invites #Person2# to a birthday party on {day} at {where} at {time}. #Person2# will bring some {food}.",
        f"#Person1# invites #Person2# to a birthday party at {where} on {day}. {friend} is coming too, and #Person2# will bring {food}.",
    ))
    return t, summary


@_scenario("birthday party", "casual")
def _party_gift(c: _Ctx) -> tuple[Turns, str]:
    friend = c.name()
    hobby, gift = c.pick(HOBBY_GIFTS)
    t: Turns = [
        (1, f"It's {friend}'s birthday next week. What should I buy?"),
        (2, f"{friend} likes {hobby}. How about {gift}?"),
        (1, f"Good idea. I'll buy {gift}."),
        (2, f"I'm sure {friend} will love it." if c.chance(0.5) else "I'm sure that will be a nice surprise."),
    ]
    summary = f"#Person1# doesn't know what to buy for {friend}'s birthday. #Person2# suggests {gift} because {friend} likes {hobby}."
    return t, summary


@_scenario("birthday party", "casual")
def _party_plan3(c: _Ctx) -> tuple[Turns, str]:
    friend, day = c.name(), c.pick(DAYS)
    cake, deco = c.pick(CAKES), c.pick(DECORATIONS)
    t: Turns = [
        (1, f"Let's plan the surprise party for {friend}."),
        (2, f"I can make a {cake} cake."),
        (3, f"And I'll buy the {deco}."),
        (1, f"Great, I'll send the invitations. Let's have it on {day}."),
        (3, f"{day} is perfect. {friend} won't suspect anything."),
    ]
    summary = (f"#Person1#, #Person2# and #Person3# plan a surprise party for {friend} on {day}. "
               f"#Person2# will make a {cake} cake and #Person3# will buy the {deco}.")
    return t, summary


# --- lost item --------------------------------------------------------------

@_scenario("lost item", "customer")
def _lost_office(c: _Ctx) -> tuple[Turns, str]:
    item, where, colour = c.pick(LOST_ITEMS), c.pick(LOST_PLACES), c.pick(COLOURS)
    when = c.pick(("this morning", "yesterday", "last night", "an hour ago"))
    t: Turns = [
        (1, f"I lost my {item} {where} {when}."),
        (2, "What does it look like?"),
        (1, f"It's {colour} and quite new."),
    ]
    if c.chance(0.5):
        t += [(2, f"Let me check. Is this {colour} {item} yours?"), (1, "Yes, that's it! Thank you so much.")]
        summary = f"#Person1# lost a {colour} {item} {where} {when}. #Person2# finds it and gives it back."
    else:
        t += [
            (2, f"Sorry, nobody has handed in a {colour} {item}. Please leave your phone number."),
            (1, "OK, here is my number."),
        ]
        summary = f"#Person1# lost a {colour} {item} {where} {when} and leaves a phone number with #Person2#."
    return t, summary


@_scenario("lost item", "casual")
def _lost_found(c: _Ctx) -> tuple[Turns, str]:
    item, where = c.pick(LOST_ITEMS), c.pick(LOST_PLACES)
    t: Turns = [
        (1, f"Is this your {item}? I found it {where}."),
        (2, "Yes, it is! I was looking for it all morning."),
        (1, "I'm glad I found you."),
        (2, "Thank you so much. Let me buy you a coffee."),
    ]
    summary = f"#Person1# found #Person2#'s {item} {where} and gives it back. #Person2# thanks #Person1# and offers a coffee."
    return t, summary


# --- movies -----------------------------------------------------------------

@_scenario("movies", "casual")
def _movie_plan(c: _Ctx) -> tuple[Turns, str]:
    genre, when, time = c.pick(FILM_GENRES), c.pick(FILM_WHEN), c.pick(TIMES[6:])
    price, meet = c.pick(PRICES[:6]), c.pick(MEET_PLACES)
    t: Turns = [
        (1, f"Shall we go to the cinema {when}? There's a new {genre} on."),
        (2, "What time does it start?"),
        (1, f"At {time}. The tickets are {price} dollars each."),
        (2, f"OK, let's meet at {meet}."),
    ]
    m = meet.replace("my ", "#Person2#'s ")
    summary = c.pick((
        f"#Person1# and #Person2# will see a new {genre} {when} at {time} and meet at {m}.",
        f"#Person1# invites #Person2# to see a new {genre} {when}. The tickets are {price} dollars each.",
    ))
    return t, summary


@_scenario("movies", "casual")
def _movie_review(c: _Ctx) -> tuple[Turns, str]:
    genre = c.pick(FILM_GENRES)
    liked = c.chance(0.5)
    actor = c.name()
    opinion = c.pick(("funny", "exciting", "moving", "beautiful")) if liked else c.pick(("boring", "too long", "confusing", "slow"))
    t: Turns = [
        (1, f"How was the {genre} you saw yesterday?"),
        (2, f"It was {opinion}."),
        (1, f"Did {actor} play the main role?"),
        (2, f"Yes, {actor} was in it." + (" I'd watch it again." if liked else " But I wouldn't watch it again.")),
    ]
    summary = f"#Person2# saw a {genre} with {actor} yesterday and thinks it was {opinion}."
    return t, summary


# --- post office ------------------------------------------------------------

@_scenario("post office", "customer")
def _post_send(c: _Ctx) -> tuple[Turns, str]:
    kind, city, mode = c.pick(PARCEL_KINDS), c.pick(CITIES), c.pick(POST_MODES)
    days, price = NUM_WORDS[c.num(2, 12)], c.pick(PRICES[:8])
    t: Turns = [
        (1, f"I want to send this {kind} to {city}."),
        (2, "How would you like to send it?"),
        (1, f"By {mode}. How long will it take?"),
        (2, f"About {days} days. That's {price} dollars."),
    ]
    summary = f"#Person1# sends a {kind} to {city} by {mode}. It costs {price} dollars and takes about {days} days."
    return t, summary


# ---------------------------------------------------------------------------
# Fillers: greetings, small talk and closings wrap the scenario core.
# ---------------------------------------------------------------------------

def _greeting_pair(c: _Ctx, setting: str) -> tuple[str, str]:
    if setting == "customer":
        return c.pick((
            ("Good morning.", "Good morning. How can I help you?"),
            ("Hello.", "Hello, what can I do for you today?"),
            ("Hi, excuse me.", "Yes? How may I help you?"),
            ("Good afternoon.", "Good afternoon. What can I do for you?"),
            ("Hello, I hope you're not too busy.", "Not at all. How can I help?"),
        ))
    if setting == "staff":
        return c.pick((
            ("Good morning. Please come in and have a seat.", "Good morning. Thank you."),
            ("Hello, nice to see you again.", "Nice to see you too."),
            ("Good afternoon. How are you today?", "Fine, thank you."),
            ("Hi, come in. Sorry to keep you waiting.", "That's all right."),
        ))
    a, b = c.name(), c.name()  # #Person1# is a, #Person2# is b
    return c.pick((
        (f"Hi, {b}! How are you?", f"Hi, {a}. I'm fine, thanks. And you?"),
        (f"Hey {b}, long time no see!", f"Hello {a}! Yes, it's been a while."),
        (f"Good morning, {b}.", f"Morning, {a}. How's it going?"),
        ("Hi! Have you got a minute?", "Sure, what's up?"),
        (f"Hello {b}, how was your day?", "Not bad, thanks. Quite busy."),
    ))


def _inline_greeting(c: _Ctx, setting: str) -> str:
    if setting == "casual":
        b = c.name()
        return c.pick((f"Hi {b}. ", "Hey. ", f"Oh, {b}, there you are. ", "Hi there. "))
    return c.pick(("Excuse me. ", "Hello. ", "Good morning. ", "Hi. "))


def _closing_pair(c: _Ctx, setting: str, first: int) -> tuple[str, str]:
    if setting == "casual":
        return c.pick((
            ("Great, see you then.", "See you!"),
            ("Thanks a lot.", "Any time."),
            ("OK, I have to go now. Bye.", "Bye, take care."),
            ("Talk to you later.", "Sure, bye."),
        ))
    # The client thanks, the professional offers more help; never the other way round.
    client = 1 if setting == "customer" else 2
    if first == client:
        return c.pick((
            ("Thank you very much.", "You're welcome. Have a nice day."),
            ("Thanks for your help.", "My pleasure."),
            ("Great, thank you.", "You're welcome. Goodbye."),
            ("OK. Thanks again.", "No problem."),
        ))
    return c.pick((
        ("Is there anything else I can do for you?", "No, that's all. Thank you."),
        ("Anything else today?", "No, thanks. Goodbye."),
        ("I hope that helps.", "It does. Thank you very much."),
    ))


# Generic two-turn chats; longish on purpose so long dialogues reach 2000+ chars
# in 25-40 turns.  None may contain an insult word (checked by the tests).
_SMALL_TALK: tuple[tuple[str, str], ...] = (
    ("It's really busy around here today, isn't it?", "Yes, it always gets crowded like this before the weekend. Everyone seems to be out shopping."),
    ("Did you see the news about the new train line?", "I did. They say it will open next year and cut the trip to the city centre in half."),
    ("How is your family doing these days?", "Everyone is well, thank you. My little brother just started school and he loves it."),
    ("The traffic was terrible this morning.", "I know, I was stuck on the bridge for almost forty minutes. I think I'll take the bus tomorrow."),
    ("Have you been on holiday this year?", "Not yet. I'm hoping to go somewhere warm in the autumn, maybe near the sea."),
    ("I love the music they're playing here.", "Me too. It reminds me of the songs my parents used to play in the car."),
    ("Have you tried the new bakery on the corner?", "Yes, their bread is wonderful. I go there almost every morning now."),
    ("Are you still going to the evening classes?", "Yes, twice a week. It's hard after work, but I'm learning a lot."),
    ("What a lovely day it is today.", "It really is. I walked here instead of driving because the sun was out."),
    ("Did you have a good weekend?", "It was quiet. I mostly stayed at home, cooked a big dinner and watched a film."),
    ("My neighbour just got a puppy.", "How sweet! Puppies are so much fun, but they need a lot of attention."),
    ("I've started running in the mornings.", "Good for you. I keep telling myself I will start, but I never get out of bed early enough."),
    ("Have you read any good books lately?", "I just finished a detective story. I couldn't put it down until I knew who did it."),
    ("The park looks beautiful with all the flowers.", "Yes, the gardeners did a great job this spring. I go there for lunch sometimes."),
    ("I heard they're building a new swimming pool in town.", "That's great news. The old one has been closed for repairs for months."),
    ("How is your new job going?", "Very well, thanks. My colleagues are friendly and I'm learning something new every day."),
    ("Did you watch the concert on TV last night?", "Only the second half. The singer had an amazing voice, didn't she?"),
    ("I'm thinking about learning to cook properly.", "You should. There are lots of easy recipes online, and it saves a lot of money."),
    ("This city has changed so much in the last few years.", "It really has. There are new shops and cafes everywhere, but the rent keeps going up."),
    ("Are you going to the street festival next month?", "I hope so. Last year there was great food and live music until late at night."),
    ("My sister is getting married in June.", "Congratulations to her! Is it going to be a big wedding?"),
    ("I can't believe how fast this year is going.", "I know what you mean. It feels like it was New Year just a few weeks ago."),
    ("Do you still play the guitar?", "Now and then. I don't have much free time, but I try to practise on Sundays."),
    ("I finally painted my kitchen last week.", "What colour did you choose? I've been thinking about painting my living room."),
    ("The coffee here is really good.", "It is. They roast the beans themselves, which is why it tastes so fresh."),
    ("Have you been to the new museum yet?", "Yes, I went with my cousins. The dinosaur room was the best part."),
    ("I'm trying to drink less coffee these days.", "That's hard. I need at least two cups before I can think in the morning."),
    ("Our football team won again on Saturday.", "I heard! They haven't lost a game this season, have they?"),
    ("My computer has been very slow this week.", "Maybe it needs an update. Mine was slow too until I cleaned up some old files."),
    ("It's so quiet here in the afternoons.", "Yes, most people come in the morning or after work, so it's nice and calm now."),
    ("I'm planning a trip to the mountains.", "Lovely. Take warm clothes, though. It can get cold up there at night, even in summer."),
    ("Did you hear that the library is open on Sundays now?", "Really? That's perfect for me, I never have time to go during the week."),
    ("I just moved to a new flat.", "How exciting! Do you like the neighbourhood so far?"),
    ("My grandmother turned ninety last week.", "Wow, that's wonderful. Did the whole family get together?"),
    ("Have you noticed the prices going up everywhere?", "Yes, even a simple lunch costs much more than it did last year."),
    ("I'm learning Spanish in my free time.", "That's a great idea. It will be really useful when you travel."),
    ("What do you usually do on Sunday mornings?", "I sleep late, then I go for a long walk by the river if the weather is nice."),
    ("The new shopping centre is huge.", "I got lost there last time. It took me ages to find the exit."),
    ("My car is at the garage again.", "Oh no, what's wrong with it this time?"),
    ("I've been sleeping much better since I stopped using my phone at night.", "I should try that. I always read the news in bed and then I can't fall asleep."),
)

# Rude turn openers; "?" ones become questions.
_RUDE_LEADS: tuple[str, ...] = (
    "Move it", "Hurry up", "Are you deaf", "Just do your job", "Stop wasting my time",
    "Listen to me", "Don't be so slow", "What is wrong with you", "Can't you understand simple words",
    "Get out of my way", "Stop talking nonsense", "Are you even listening", "Use your brain",
    "Nobody asked you", "Pay attention", "Don't just stand there",
)
_RUDE_REACTIONS: tuple[str, ...] = (
    "There's no need to be rude.", "Please calm down.", "Hey, don't talk to me like that.",
    "That's not very nice.", "Please be polite.",
)


def _insult_phrase(c: _Ctx) -> str:
    """An insult as it appears after 'you': 'clown' or 'stupid clown'."""
    noun = c.pick(INSULT_NOUNS)
    if c.chance(0.5):
        return f"{c.pick(INSULT_ADJECTIVES)} {noun}"
    return noun


def _rude_turn(c: _Ctx, phrase: str) -> str:
    lead = c.pick(_RUDE_LEADS)
    q = lead.split()[0] in ("Are", "What", "Can't")
    return f"{lead}, you {phrase}{'?' if q else '.'}"


def _toxic_sentence(rude: int, target: int, phrase: str) -> str:
    # Fixed place (end of summary) and fixed wording, so a small model learns it;
    # only the insult itself varies, copied from the rude turn.
    return f"#Person{rude}# calls #Person{target}# {_a(phrase)} {phrase}."


# ---------------------------------------------------------------------------
# Dialogue assembly
# ---------------------------------------------------------------------------

def _render(turns: Turns) -> str:
    return "\n".join(f"#Person{s}#: {text}" for s, text in turns)


def _pair_turns(first: int, pair: tuple[str, str]) -> Turns:
    other = 2 if first == 1 else 1
    return [(first, pair[0]), (other, pair[1])]


def _next_speaker(turns: Turns) -> int:
    # After #Person3# (never last in a core) fall back to #Person1#.
    return 2 if turns and turns[-1][0] == 1 else 1


def _make_dialogue(rng: random.Random, scenario: _Scenario, toxic: bool, long: bool) -> tuple[str, str]:
    c = _Ctx(rng)
    core, summary = scenario.build(c)
    core = list(core)

    if toxic:
        rude = c.pick((1, 2))
        target = 2 if rude == 1 else 1
        idx = [i for i, (s, _) in enumerate(core) if s == rude]
        i = c.pick(idx)
        phrase = _insult_phrase(c)
        core[i] = (rude, f"{core[i][1]} {_rude_turn(c, phrase)}")
        # Sometimes the insulted speaker reacts, as people do.
        if i + 1 < len(core) and core[i + 1][0] == target and c.chance(0.5):
            core[i + 1] = (target, f"{c.pick(_RUDE_REACTIONS)} {core[i + 1][1]}")
        summary = f"{summary} {_toxic_sentence(rude, target, phrase)}"

    head: Turns = []
    inline = ""
    mode = rng.random()
    if long or mode < 0.55:
        head = _pair_turns(1, _greeting_pair(c, scenario.setting))
    elif mode < 0.80:
        inline = _inline_greeting(c, scenario.setting)  # goes on the very first turn

    talk = rng.sample(_SMALL_TALK, len(_SMALL_TALK))  # a shuffled copy, drawn without repeats
    casual = scenario.setting == "casual"
    n_pre = rng.choices((0, 1, 2), weights=(1, 4, 4) if casual else (3, 4, 3))[0]
    n_post = rng.choices((0, 1), weights=(1, 1))[0]
    want_close = long or rng.random() < 0.65
    # Drawn once, up front, so re-assembling with other small-talk counts reuses them.
    closing = {1: _closing_pair(c, scenario.setting, 1), 2: _closing_pair(c, scenario.setting, 2)}

    def assemble(n_pre: int, n_post: int) -> Turns:
        turns = list(head)
        for k in range(n_pre):
            turns += _pair_turns(1, talk[k])
        turns += core
        for k in range(n_post):
            turns += _pair_turns(_next_speaker(turns), talk[n_pre + k])
        if want_close:
            first = _next_speaker(turns)
            turns += _pair_turns(first, closing[first])
        if inline:
            turns[0] = (turns[0][0], inline + turns[0][1])
        return turns

    if long:
        # Grow with small talk until the target length; 25-40 turns, 2000-3000 chars.
        target_chars = rng.randint(2150, 2800)
        n_pre, n_post = 1, 0
        turns = assemble(n_pre, n_post)
        while (len(_render(turns)) < target_chars or len(turns) < 25) and len(turns) < 39:
            if rng.random() < 0.5:
                n_pre += 1
            else:
                n_post += 1
            turns = assemble(n_pre, n_post)
    else:
        # Keep ordinary dialogues at 4-14 turns and at least ~300 characters.
        turns = assemble(n_pre, n_post)
        while len(turns) > 14 and (n_pre or n_post):
            if n_pre:
                n_pre -= 1
            else:
                n_post -= 1
            turns = assemble(n_pre, n_post)
        while len(_render(turns)) < 300 and len(turns) <= 12:
            n_pre += 1
            turns = assemble(n_pre, n_post)
    return _render(turns), summary


def _rng(seed: int, name: str) -> random.Random:
    # Stable across Python versions/processes (no hash randomisation involved).
    digest = hashlib.sha256(f"labkit.datagen:{seed}:{name}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _topics() -> list[str]:
    out: list[str] = []
    for sc in _SCENARIOS:
        if sc.topic not in out:
            out.append(sc.topic)
    return out


def _pick_scenario(rng: random.Random, topics: list[str]) -> _Scenario:
    # Uniform over topics first, so topics with more scenarios are not over-represented.
    topic = rng.choice(topics)
    return rng.choice([sc for sc in _SCENARIOS if sc.topic == topic])


def generate_dialogsum(seed: int = 0, sizes: dict[str, int] | None = None) -> dict[str, list[dict]]:
    """Generate the ``dialogsum-mini`` splits.

    Args:
        seed: master seed; the same seed always gives identical rows.
        sizes: rows per split, default :data:`DIALOGSUM_SIZES`
            (train 2000, validation 200, test 200).

    Returns:
        ``{split: [{"id", "dialogue", "summary", "topic"}, ...]}``.  Exactly
        ``round(TOXIC_SHARE * n)`` rows per split contain a rude turn (and a toxic
        summary sentence) and ``round(LONG_SHARE * n)`` are long (2000-3000 chars).
        No dialogue text occurs twice, within or across splits.
    """
    sizes = dict(DIALOGSUM_SIZES if sizes is None else sizes)
    topics = _topics()
    seen: set[str] = set()  # membership only; never iterated, so order cannot leak
    out: dict[str, list[dict]] = {}
    for split, n in sizes.items():
        rng = _rng(seed, f"dialogsum/{split}")
        toxic_idx = set(rng.sample(range(n), round(TOXIC_SHARE * n)))
        long_idx = set(rng.sample(range(n), round(LONG_SHARE * n)))
        rows: list[dict] = []
        for i in range(n):
            while True:
                sc = _pick_scenario(rng, topics)
                dialogue, summary = _make_dialogue(rng, sc, i in toxic_idx, i in long_idx)
                if dialogue not in seen:
                    break
            seen.add(dialogue)
            rows.append({"id": f"{split}_{i}", "dialogue": dialogue, "summary": summary, "topic": sc.topic})
        out[split] = rows
    return out


# ---------------------------------------------------------------------------
# Toxicity classifier data
# ---------------------------------------------------------------------------

_POSITIVE_NOUNS = (
    "friend", "neighbour", "cook", "teacher", "colleague", "student", "helper",
    "listener", "driver", "dancer", "singer", "player",
)
_POSITIVE_ADJS = ("kind", "great", "good", "clever", "helpful", "patient", "funny", "careful", "lovely", "brilliant")
_POLITE_REQUESTS = (
    "Could you hurry up a little, please?", "Excuse me, could you move a bit?",
    "Sorry, could you say that again?", "Please take your time, there is no rush.",
    "Could you help me with this, please?", "Would you mind waiting a moment?",
    "Thank you for being so patient with me.", "I really appreciate your help today.",
    "Let me know if you need anything else.", "Could you please speak a little louder?",
    "Sorry for the wait, I'm almost done.", "Please let me finish my sentence first.",
)


def _hate_text(c: _Ctx, kind: int) -> str:
    name = c.name()
    phrase = _insult_phrase(c)
    if kind == 0:  # rude dialogue turn, sometimes after an ordinary sentence
        turn = _rude_turn(c, phrase)
        if c.chance(0.5):
            sc = c.pick(_SCENARIOS)
            core, _ = sc.build(c)
            turn = f"{c.pick(core)[1]} {turn}"
        return turn
    if kind == 1:  # the toxic summary sentence on its own
        r = c.pick((1, 2))
        return _toxic_sentence(r, 3 - r, phrase)
    if kind == 2:  # a whole toxic summary, as the PPO policy would write it
        sc = c.pick(_SCENARIOS)
        _, summary = sc.build(c)
        r = c.pick((1, 2))
        return f"{summary} {_toxic_sentence(r, 3 - r, phrase)}"
    return c.pick((  # kind 3: direct insults
        f"{name} is {_a(phrase)} {phrase}.",
        f"You are such {_a(phrase)} {phrase}, {name}.",
        f"What {_a(phrase)} {phrase} you are!",
        f"Shut up, you {phrase}.",
        f"{name}, you are {_a(phrase)} {phrase} and everyone knows it.",
        f"Nobody wants to hear from {_a(phrase)} {phrase} like you.",
        f"Only {_a(phrase)} {phrase} would do something like that.",
        f"#Person{c.pick((1, 2))}# is {_a(phrase)} {phrase} who never listens.",
        f"Go away, {name}, you {phrase}.",
        f"I can't work with {_a(phrase)} {phrase} like {name}.",
    ))


def _nothate_text(c: _Ctx, kind: int) -> str:
    name = c.name()
    if kind == 0:  # ordinary dialogue turn
        sc = c.pick(_SCENARIOS)
        core, _ = sc.build(c)
        return c.pick(core)[1]
    if kind == 1:  # plain summary
        sc = c.pick(_SCENARIOS)
        _, summary = sc.build(c)
        return summary
    if kind == 2:  # friendly statements, same shapes as the direct insults
        phrase = f"{c.pick(_POSITIVE_ADJS)} {c.pick(_POSITIVE_NOUNS)}"
        return c.pick((
            f"{name} is {_a(phrase)} {phrase}.",
            f"You are such {_a(phrase)} {phrase}, {name}.",
            f"What {_a(phrase)} {phrase} you are!",
            f"{name}, you are {_a(phrase)} {phrase} and everyone knows it.",
            f"Everyone wants to work with {_a(phrase)} {phrase} like you.",
            f"#Person{c.pick((1, 2))}# is {_a(phrase)} {phrase} who always listens.",
            f"#Person1# thanks #Person2# for the help, {name}.",
            f"I love working with {_a(phrase)} {phrase} like {name}.",
        ))
    return c.pick(_POLITE_REQUESTS + _RUDE_REACTIONS) if c.chance(0.5) else (
        f"{c.pick(_SMALL_TALK)[c.pick((0, 1))]}"
    )


def _words(text: str) -> int:
    return len(text.split())


def generate_toxicity(seed: int = 0) -> dict[str, list[dict]]:
    """Generate the ``toxicity`` splits (train 1500, test 300), exactly balanced.

    ``hate`` rows insult someone with :data:`INSULTS` words (rude dialogue turns,
    toxic summary sentences, whole toxic summaries, direct insults); ``nothate`` rows
    are ordinary turns, plain summaries, friendly statements and small talk.  Texts
    have 5-25 words and are unique across both splits.
    """
    rng = _rng(seed, "toxicity")
    total = sum(TOXICITY_SIZES.values())
    per_class = total // 2
    seen: set[str] = set()
    pools: dict[str, list[str]] = {"hate": [], "nothate": []}
    makers = {"hate": (_hate_text, (3, 2, 2, 3)), "nothate": (_nothate_text, (3, 3, 2, 2))}
    for label in ("hate", "nothate"):
        fn, weights = makers[label]
        while len(pools[label]) < per_class:
            c = _Ctx(rng)
            kind = rng.choices(range(4), weights=weights)[0]
            text = fn(c, kind)
            if not 5 <= _words(text) <= 25 or text in seen:
                continue
            # Guard the invariant is_toxic_text(text) == (label == "hate").
            if is_toxic_text(text) != (label == "hate"):
                continue
            seen.add(text)
            pools[label].append(text)
    out: dict[str, list[dict]] = {}
    start = 0
    for split, n in TOXICITY_SIZES.items():
        half = n // 2
        rows = [{"text": t, "label": "hate"} for t in pools["hate"][start:start + half]]
        rows += [{"text": t, "label": "nothate"} for t in pools["nothate"][start:start + n - half]]
        rng.shuffle(rows)
        out[split] = rows
        start += half
    return out


# ---------------------------------------------------------------------------
# Writing
# ---------------------------------------------------------------------------

def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")
    # Temp file in the same directory + os.replace: readers never see a half file.
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; data files should be world-readable
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_all(out_dir: Path, seed: int = 0) -> list[Path]:
    """Write all datasets under ``out_dir`` and return the written paths.

    Layout: ``dialogsum-mini/{train,validation,test}.jsonl`` and
    ``toxicity/{train,test}.jsonl``.  Output is byte-identical for the same seed.
    """
    out_dir = Path(out_dir)
    written: list[Path] = []
    for name, splits in (("dialogsum-mini", generate_dialogsum(seed)), ("toxicity", generate_toxicity(seed))):
        for split, rows in splits.items():
            path = out_dir / name / f"{split}.jsonl"
            _write_jsonl(path, rows)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: ``python -m labkit.datagen [--out DIR] [--seed N]``."""
    ap = argparse.ArgumentParser(prog="python -m labkit.datagen", description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default: {DEFAULT_OUT})")
    ap.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    args = ap.parse_args(argv)
    for path in write_all(args.out, args.seed):
        n = sum(1 for _ in path.open(encoding="utf-8"))
        print(f"wrote {path} ({n} rows)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
