"""The scenario tables: each registered builder writes the core turns and the summary of one everyday situation.

A builder returns core turns (always starting with ``#Person1#``) and a summary whose slot words are
copied from those turns. Builders register in file order, and that order is part of the seeded output:
moving one changes every generated file.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from labkit.datagen.context import Ctx, Turns, a_or_an, cap
from labkit.datagen.vocabulary import (
    AMOUNTS, APARTMENT_FEATURES, BROKEN_THINGS, BUSINESSES, CAKES, CALLBACK_WHEN, CARD_LOSS_TIMES, CHORES,
    CITIES, CLOTHES, COLOURS, CURRENCIES, DAYS, DECORATIONS, DESSERTS, DISHES, DOC_TYPES, DOSES, DRINKS,
    FILM_GENRES, FILM_WHEN, GROCERIES, GROCERY_NEIGHBOURS, GYM_EXTRAS, HEALTH_ADVICE, HEALTH_PROBLEMS,
    HOBBY_GIFTS, HOLIDAY_ACTIVITIES, HOTEL_PROBLEMS, HOTEL_ROOMS, ID_DOCS, JOBS, LANDMARKS, LOST_ITEMS,
    LOST_PLACES, MEDICINES, MEET_PLACES, NUM_WORDS, OBLIGATIONS, PARCEL_KINDS, PARTY_FOOD, PARTY_PLACES,
    PHONE_REASONS, POST_MODES, PRICES, PROFESSIONALS, RENTS, RETURN_REASONS, SPORTS, SPORT_VENUES, STREETS,
    SUBJECTS, SURNAMES, SYMPTOMS, TEAMS, TIMES, TOWN_PLACES, TRAITS, TRANSPORT, WEATHER_NEXT, WEATHER_NOW,
    WEATHER_PLANS, WEEKEND_PAST,
)

Builder = Callable[[Ctx], tuple[Turns, str]]


@dataclass(frozen=True)
class Scenario:
    """One situation: its DialogSum topic, who opens it, and the builder of its core turns and summary."""

    topic: str
    # "customer": #Person1# approaches staff; "staff": #Person1# is the professional;
    # "casual": friends/colleagues.  Picks matching greetings and closings.
    setting: str
    build: Builder


# Filled by @register below, in file order (the seeded draws index into it).
SCENARIOS: list[Scenario] = []


def register(topic: str, setting: str) -> Callable[[Builder], Builder]:
    """Decorator that appends a builder to :data:`SCENARIOS` under ``topic`` and ``setting``."""
    def deco(fn: Builder) -> Builder:
        SCENARIOS.append(Scenario(topic, setting, fn))
        return fn
    return deco


# --- shopping ---------------------------------------------------------------

@register("shopping", "customer")
def _shop_clothes(c: Ctx) -> tuple[Turns, str]:
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


@register("shopping", "customer")
def _shop_return(c: Ctx) -> tuple[Turns, str]:
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


@register("shopping", "customer")
def _shop_grocery(c: Ctx) -> tuple[Turns, str]:
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

@register("doctor", "staff")
def _doc_symptom(c: Ctx) -> tuple[Turns, str]:
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


@register("doctor", "customer")
def _doc_booking(c: Ctx) -> tuple[Turns, str]:
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


@register("doctor", "staff")
def _doc_advice(c: Ctx) -> tuple[Turns, str]:
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

@register("travel", "customer")
def _travel_ticket(c: Ctx) -> tuple[Turns, str]:
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


@register("travel", "customer")
def _travel_checkin(c: Ctx) -> tuple[Turns, str]:
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
        (1, f"Just {bag_txt}." if bags == 1 else f"{cap(bag_txt)}."),
        (2, f"Here is your boarding pass. The flight boards at gate {gate} at {time}."),
    ]
    summary = (f"#Person1# checks in for a flight to {city} with {bag_txt} and gets {a_or_an(seat)} {seat} seat. "
               f"The flight boards at gate {gate} at {time}.")
    return t, summary


@register("travel", "casual")
def _travel_directions(c: Ctx) -> tuple[Turns, str]:
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


@register("travel", "casual")
def _travel_holiday(c: Ctx) -> tuple[Turns, str]:
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

@register("job interview", "staff")
def _job_interview(c: Ctx) -> tuple[Turns, str]:
    job = c.pick(JOBS)
    years = NUM_WORDS[c.num(2, 9)]
    tr1, tr2 = c.picks(TRAITS, 2)
    start = c.pick(("next Monday", "next month", "in two weeks", "right away", "in September"))
    t: Turns = [
        (1, f"So you are applying for the job of {job}. Tell me about your experience."),
        (2, f"I have {years} years of experience as {a_or_an(job)} {job}."),
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


@register("job interview", "customer")
def _job_salary(c: Ctx) -> tuple[Turns, str]:
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


@register("work", "casual")
def _work_report(c: Ctx) -> tuple[Turns, str]:
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


@register("work", "casual")
def _work_meeting(c: Ctx) -> tuple[Turns, str]:
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

@register("school", "customer")
def _school_exam(c: Ctx) -> tuple[Turns, str]:
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


@register("school", "casual")
def _school_study(c: Ctx) -> tuple[Turns, str]:
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


@register("school", "staff")
def _school_homework(c: Ctx) -> tuple[Turns, str]:
    subj, day = c.pick(SUBJECTS), c.pick(DAYS[:5])
    excuse = c.pick(("left it at home", "was sick yesterday", "forgot about it",
                     "missed the last class", "had a football match", "worked late"))
    t: Turns = [
        (1, f"Where is your {subj} homework?"),
        (2, f"I'm sorry, I {excuse}."),
        (1, f"Please hand it in by {day}."),
        (2, "I will. It won't happen again."),
    ]
    summary = (f"#Person2# doesn't hand in the {subj} homework because #Person2# {excuse}. "
               f"#Person1# asks #Person2# to hand it in by {day}.")
    return t, summary


# --- restaurant -------------------------------------------------------------

@register("restaurant", "staff")
def _rest_order(c: Ctx) -> tuple[Turns, str]:
    dish, drink = c.pick(DISHES), c.pick(DRINKS)
    t: Turns = [
        (1, "Are you ready to order?"),
        (2, f"Yes, I'd like the {dish}, please."),
        (1, "Anything to drink?"),
        (2, f"{cap(a_or_an(drink))} {drink}, please."),
        (1, "Would you like a dessert?"),
    ]
    if c.chance(0.5):
        dessert = c.pick(DESSERTS)
        t.append((2, f"Yes, the {dessert}, please."))
        summary = f"#Person2# orders the {dish} and {a_or_an(drink)} {drink}, and the {dessert} for dessert."
    else:
        t.append((2, "No, thanks. Just the bill later."))
        summary = f"#Person2# orders the {dish} and {a_or_an(drink)} {drink} but no dessert."
    return t, summary


@register("restaurant", "customer")
def _rest_booking(c: Ctx) -> tuple[Turns, str]:
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


@register("restaurant", "customer")
def _rest_complaint(c: Ctx) -> tuple[Turns, str]:
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


@register("restaurant", "staff")
def _rest_three(c: Ctx) -> tuple[Turns, str]:
    d1, d2 = c.picks(DISHES, 2)
    drink = c.pick(DRINKS)
    t: Turns = [
        (1, "Good evening. What can I get you?"),
        (2, f"I'll have the {d1}, please."),
        (3, f"And I'd like the {d2}."),
        (1, "Anything to drink?"),
        (3, f"{cap(drink)} for both of us, please."),
        (1, "Certainly. It will be ready soon."),
    ]
    summary = f"#Person2# orders the {d1} and #Person3# orders the {d2}. They both drink {drink}."
    return t, summary


# --- renting ----------------------------------------------------------------

@register("renting", "customer")
def _rent_flat(c: Ctx) -> tuple[Turns, str]:
    street, feat, rent = c.pick(STREETS), c.pick(APARTMENT_FEATURES), c.pick(RENTS)
    rooms = NUM_WORDS[c.num(1, 4)]
    day, time = c.pick(DAYS), c.pick(TIMES)
    bed = "bedroom" if rooms == "one" else "bedrooms"
    t: Turns = [
        (1, f"I'm calling about the apartment for rent on {street}."),
        (2, f"Yes, it has {rooms} {bed} and {a_or_an(feat)} {feat}."),
        (1, "How much is the rent?"),
        (2, f"It's {rent} dollars a month."),
        (1, f"Can I see it on {day}?"),
        (2, f"Sure, come at {time}."),
    ]
    summary = (f"#Person1# asks about an apartment on {street} with {rooms} {bed}. "
               f"The rent is {rent} dollars a month and #Person1# will see it on {day} at {time}.")
    return t, summary


@register("renting", "customer")
def _rent_repair(c: Ctx) -> tuple[Turns, str]:
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


@register("renting", "casual")
def _rent_chores(c: Ctx) -> tuple[Turns, str]:
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

@register("bank", "customer")
def _bank_open(c: Ctx) -> tuple[Turns, str]:
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


@register("bank", "customer")
def _bank_exchange(c: Ctx) -> tuple[Turns, str]:
    amount, cur = c.pick(AMOUNTS), c.pick(CURRENCIES)
    notes = c.pick(("small", "large"))
    t: Turns = [
        (1, f"I want to change {amount} dollars into {cur}."),
        (2, "Sure. Would you like small or large notes?"),
        (1, f"{cap(notes)} notes, please."),
        (2, f"Here are your {cur}. Please count them."),
    ]
    summary = f"#Person1# changes {amount} dollars into {cur} and asks for {notes} notes."
    return t, summary


@register("bank", "customer")
def _bank_card(c: Ctx) -> tuple[Turns, str]:
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

@register("hotel", "customer")
def _hotel_checkin(c: Ctx) -> tuple[Turns, str]:
    guest = f"{c.name()} {c.pick(SURNAMES)}"
    room = c.pick(HOTEL_ROOMS)
    nights = NUM_WORDS[c.num(2, 7)]
    number = c.num(2, 9) * 100 + c.num(1, 30)
    t: Turns = [
        (1, f"I have a reservation under the name {guest}."),
        (2, f"Yes, {a_or_an(room)} {room} for {nights} nights. Your room is {number}."),
        (1, "Is breakfast included?"),
    ]
    if c.chance(0.5):
        t.append((2, "Yes, breakfast is included. It's served from 7 to 10."))
        end = "breakfast is included"
    else:
        price = c.pick(PRICES[:6])
        t.append((2, f"No, breakfast costs {price} dollars."))
        end = f"breakfast costs {price} dollars"
    summary = (f"#Person1# checks in to {a_or_an(room)} {room} for {nights} nights under the name {guest}. "
               f"The room is {number} and {end}.")
    return t, summary


@register("hotel", "customer")
def _hotel_complaint(c: Ctx) -> tuple[Turns, str]:
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

@register("weather", "casual")
def _weather(c: Ctx) -> tuple[Turns, str]:
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


@register("weekend", "casual")
def _weekend(c: Ctx) -> tuple[Turns, str]:
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

@register("sports", "casual")
def _sport_invite(c: Ctx) -> tuple[Turns, str]:
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


@register("sports", "casual")
def _sport_match(c: Ctx) -> tuple[Turns, str]:
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


@register("sports", "customer")
def _sport_gym(c: Ctx) -> tuple[Turns, str]:
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

@register("phone call", "customer")
def _phone_message(c: Ctx) -> tuple[Turns, str]:
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


@register("phone call", "customer")
def _phone_reschedule(c: Ctx) -> tuple[Turns, str]:
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


@register("phone call", "customer")
def _phone_wrong(c: Ctx) -> tuple[Turns, str]:
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

@register("birthday party", "casual")
def _party_invite(c: Ctx) -> tuple[Turns, str]:
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


@register("birthday party", "casual")
def _party_gift(c: Ctx) -> tuple[Turns, str]:
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


@register("birthday party", "casual")
def _party_plan3(c: Ctx) -> tuple[Turns, str]:
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

@register("lost item", "customer")
def _lost_office(c: Ctx) -> tuple[Turns, str]:
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


@register("lost item", "casual")
def _lost_found(c: Ctx) -> tuple[Turns, str]:
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

@register("movies", "casual")
def _movie_plan(c: Ctx) -> tuple[Turns, str]:
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


@register("movies", "casual")
def _movie_review(c: Ctx) -> tuple[Turns, str]:
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

@register("post office", "customer")
def _post_send(c: Ctx) -> tuple[Turns, str]:
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
