"""Greetings, small talk and closings that wrap a scenario's core turns into a whole dialogue."""

from __future__ import annotations

from labkit.datagen.context import Ctx


def greeting_pair(c: Ctx, setting: str) -> tuple[str, str]:
    """The opening exchange (#Person1#, then #Person2#) for a scenario's ``setting``."""
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


def inline_greeting(c: Ctx, setting: str) -> str:
    """A short greeting put in front of the first turn instead of a greeting exchange."""
    if setting == "casual":
        b = c.name()
        return c.pick((f"Hi {b}. ", "Hey. ", f"Oh, {b}, there you are. ", "Hi there. "))
    return c.pick(("Excuse me. ", "Hello. ", "Good morning. ", "Hi. "))


def closing_pair(c: Ctx, setting: str, first: int) -> tuple[str, str]:
    """The closing exchange when #Person``first``# speaks first."""
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
SMALL_TALK: tuple[tuple[str, str], ...] = (
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
