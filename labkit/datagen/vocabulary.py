"""The slot-value word pools (names, places, items, prices, ...) that the scenario tables draw from.

Kept to 10-30 values each so a tiny model sees each value many times.
"""

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
