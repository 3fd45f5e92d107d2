"""The vocabulary the seed draws on: reference data, kept as data."""

from __future__ import annotations

FIRST_NAMES = (
    "Ada", "Amara", "Anouk", "Aryan", "Beatriz", "Bram", "Camille", "Chen", "Dario", "Dilnoza", "Elif", "Emeka",
    "Farah", "Finn", "Giulia", "Hana", "Hugo", "Ines", "Ivan", "Jamal", "Jia", "Kai", "Keiko", "Lars", "Leila",
    "Luca", "Maia", "Mateo", "Mei", "Nadia", "Nico", "Noor", "Oskar", "Priya", "Rafael", "Rosa", "Sami", "Sofia",
    "Tariq", "Thea", "Uma", "Viktor", "Wen", "Yara", "Yusuf", "Zofia", "Zanele", "Olu", "Pilar", "Ravi",
)
LAST_NAMES = (
    "Abara", "Almeida", "Bakker", "Bianchi", "Castro", "Chowdhury", "Dubois", "Eriksen", "Fischer", "Garcia",
    "Haddad", "Horvat", "Ibrahim", "Jansen", "Kowalski", "Kim", "Larsen", "Lopez", "Mensah", "Moreau", "Nakamura",
    "Novak", "Okafor", "Olsen", "Park", "Petrov", "Quispe", "Rossi", "Sato", "Schmidt", "Silva", "Tanaka", "Torres",
    "Umarov", "Varga", "Wagner", "Wang", "Xu", "Yilmaz", "Zhang", "Ndiaye", "Costa", "Hughes", "Lindqvist",
)
EMAIL_DOMAINS = ("example.com", "example.org", "mail.example.net", "cuisine.example", "kitchen.example.io")
LOCALES = ("en-GB", "en-US", "fr-FR", "de-DE", "es-ES", "it-IT", "ja-JP", "pt-BR", "nl-NL", "tr-TR")
DIETS = ("vegetarian", "vegan", "pescatarian", "gluten-free", "dairy-free", "halal", "kosher", "low-sodium")
SKILLS = ("beginner", "home cook", "confident", "advanced", "professional")

# (category, default unit, density g/ml or None, base names)
INGREDIENT_GROUPS = (
    ("vegetable", "g", None, ("onion", "carrot", "leek", "celery", "potato", "tomato", "pepper", "courgette",
                              "aubergine", "cabbage", "spinach", "kale", "fennel", "beetroot", "squash", "mushroom",
                              "shallot", "garlic", "cauliflower", "broccoli", "parsnip", "radish", "asparagus")),
    ("fruit", "g", None, ("apple", "pear", "lemon", "lime", "orange", "plum", "cherry", "apricot", "fig", "mango",
                          "pineapple", "raspberry", "blueberry", "quince", "grape", "rhubarb", "date", "pomegranate")),
    ("grain", "g", None, ("rice", "barley", "oats", "bulgur", "couscous", "polenta", "spelt", "quinoa", "farro",
                          "flour", "semolina", "buckwheat", "millet")),
    ("dairy", "g", None, ("butter", "yoghurt", "cheddar", "parmesan", "ricotta", "feta", "mozzarella", "cream",
                          "mascarpone", "halloumi", "paneer")),
    ("meat", "g", None, ("chicken", "beef", "pork", "lamb", "duck", "turkey", "veal", "venison", "chorizo",
                         "bacon")),
    ("fish", "g", None, ("salmon", "cod", "mackerel", "sardine", "tuna", "trout", "haddock", "prawn", "mussel",
                         "squid", "anchovy")),
    ("spice", "g", None, ("cumin", "coriander seed", "paprika", "turmeric", "cinnamon", "clove", "cardamom",
                          "nutmeg", "chilli", "black pepper", "fenugreek", "sumac", "star anise", "saffron")),
    ("herb", "g", None, ("basil", "parsley", "coriander", "dill", "mint", "thyme", "rosemary", "sage", "tarragon",
                         "oregano", "chive", "bay leaf")),
    ("oil", "ml", 0.91, ("olive oil", "rapeseed oil", "sesame oil", "sunflower oil", "walnut oil", "ghee")),
    ("sweetener", "g", None, ("sugar", "honey", "maple syrup", "molasses", "jaggery", "agave syrup")),
    ("liquid", "ml", 1.0, ("water", "stock", "milk", "wine", "vinegar", "soy sauce", "coconut milk", "cider",
                           "beer", "fish sauce")),
    ("legume", "g", None, ("chickpea", "lentil", "black bean", "kidney bean", "split pea", "edamame", "tofu",
                           "tempeh", "broad bean")),
    ("nut", "g", None, ("almond", "walnut", "hazelnut", "pistachio", "cashew", "pine nut", "peanut", "pecan",
                        "sesame seed", "pumpkin seed")),
    ("other", "piece", None, ("egg", "bread roll", "tortilla", "pastry sheet", "rice paper", "nori sheet",
                              "vanilla pod", "gelatine leaf")),
)
INGREDIENT_QUALIFIERS = ("", "smoked ", "fresh ", "dried ", "organic ", "roasted ", "wild ", "heritage ")

# (name, kind, seconds, equipment, description)
TRANSFORMATIONS = (
    ("chop", "cut", 120, ("knife", "board"), "Cut into rough pieces of about a centimetre."),
    ("dice", "cut", 180, ("knife", "board"), "Cut into even cubes so they cook at the same rate."),
    ("mince", "cut", 150, ("knife", "board"), "Cut as finely as possible, rocking the blade."),
    ("julienne", "cut", 300, ("knife", "board"), "Cut into thin matchsticks."),
    ("slice", "cut", 120, ("knife", "board"), "Cut across into slices of even thickness."),
    ("grate", "cut", 90, ("grater",), "Rub against the grater's fine side."),
    ("saute", "heat", 420, ("pan", "hob"), "Cook quickly in a little fat over medium-high heat, moving often."),
    ("roast", "heat", 2400, ("oven", "tray"), "Cook in dry heat in the oven until browned."),
    ("boil", "heat", 600, ("pot", "hob"), "Cook in rapidly bubbling water."),
    ("simmer", "heat", 1800, ("pot", "hob"), "Cook just below the boil, with small bubbles breaking the surface."),
    ("grill", "heat", 600, ("grill",), "Cook under or over strong direct heat."),
    ("bake", "heat", 2100, ("oven",), "Cook in the oven's surrounding heat."),
    ("steam", "heat", 720, ("steamer", "pot"), "Cook in the steam above simmering water."),
    ("deep-fry", "heat", 360, ("fryer",), "Cook submerged in hot oil."),
    ("braise", "heat", 5400, ("casserole", "oven"), "Brown, then cook slowly covered in a little liquid."),
    ("poach", "heat", 480, ("pot", "hob"), "Cook gently in liquid well below the boil."),
    ("toast", "heat", 240, ("pan",), "Heat dry until fragrant and lightly coloured."),
    ("sous-vide", "heat", 7200, ("water bath", "vacuum sealer"), "Cook sealed in a bath at a precise temperature."),
    ("chill", "cool", 1800, ("fridge",), "Cool in the fridge until cold throughout."),
    ("freeze", "cool", 14400, ("freezer",), "Freeze solid."),
    ("blast-chill", "cool", 900, ("blast chiller",), "Bring the temperature down quickly for food safety."),
    ("whisk", "mix", 120, ("whisk", "bowl"), "Beat to incorporate air."),
    ("fold", "mix", 90, ("spatula", "bowl"), "Combine gently so as not to lose air."),
    ("knead", "mix", 600, ("mixer",), "Work the dough until smooth and elastic."),
    ("blend", "mix", 60, ("blender",), "Blend until smooth."),
    ("emulsify", "mix", 180, ("whisk", "bowl"), "Combine fat and liquid into a stable emulsion."),
    ("marinate", "rest", 3600, ("bowl", "fridge"), "Leave in the marinade so the flavours penetrate."),
    ("rest", "rest", 600, (), "Leave undisturbed so juices settle."),
    ("proof", "rest", 3600, ("proofing basket",), "Leave the dough to rise until doubled."),
    ("ferment", "ferment", 259200, ("crock",), "Leave to ferment at room temperature."),
    ("brine", "preserve", 43200, ("container", "fridge"), "Soak in salted water."),
    ("pickle", "preserve", 86400, ("jar",), "Preserve in an acidic liquid."),
    ("cure", "preserve", 172800, ("fridge",), "Preserve with salt and sugar."),
    ("smoke", "preserve", 10800, ("smoker",), "Expose to smoke from smouldering wood."),
    ("plate", "assemble", 120, ("plates",), "Arrange on warm plates."),
    ("layer", "assemble", 300, ("dish",), "Build up in alternating layers."),
    ("garnish", "assemble", 60, (), "Finish with herbs, oil or seasoning."),
    ("stuff", "assemble", 420, (), "Fill the cavity with the prepared filling."),
)

DISH_TYPES = ("stew", "salad", "soup", "curry", "tart", "pie", "risotto", "pilaf", "bake", "gratin", "skewers",
              "stir-fry", "flatbread", "dumplings", "noodles", "tagine", "frittata", "cake", "crumble", "sauce")
ADJECTIVES = ("smoky", "quick", "slow-cooked", "crispy", "spiced", "creamy", "zesty", "rustic", "summer",
              "winter", "grandmother's", "weeknight", "charred", "herby", "golden", "fragrant", "sticky", "light")
TAGS = ("quick", "vegan", "vegetarian", "family", "batch-cook", "spicy", "comfort", "festive", "budget",
        "one-pot", "gluten-free", "high-protein", "make-ahead", "kid-friendly")
KITCHEN_NAMES = ("Home kitchen", "Weekend cabin", "Office kitchenette", "Test kitchen", "Garden kitchen",
                 "Allotment shed", "Restaurant line", "Food truck")
EQUIPMENT = ("oven", "hob", "grill", "fryer", "steamer", "blender", "mixer", "water bath", "vacuum sealer", "smoker",
             "blast chiller", "fridge", "freezer", "pressure cooker", "wok", "casserole", "proofing basket")
WORDS = (
    "the", "a", "with", "and", "until", "then", "slowly", "gently", "lightly", "season", "taste", "golden", "soft",
    "tender", "crisp", "bright", "deep", "warm", "cool", "fresh", "stir", "turn", "cover", "uncover", "reduce",
    "sauce", "heat", "pan", "bowl", "tray", "edges", "centre", "juices", "fragrant", "glossy", "thick", "thin",
    "salt", "pepper", "lemon", "butter", "oil", "garlic", "onion", "herbs", "spices", "family", "favourite",
    "weekend", "weeknight", "market", "season's", "best", "simple", "layered", "balanced", "contrast", "texture",
    "richness", "acidity", "sweetness", "heat", "smoke", "char", "crust", "crumb", "silky", "velvety", "bold",
    "comforting", "leftovers", "keeps", "days", "fridge", "freezes", "well", "serve", "alongside", "bread", "rice",
    "greens", "yoghurt", "pickles", "toasted", "seeds", "nuts", "zest", "drizzle", "scatter", "fold", "whisk",
)
NOTE_OPENERS = ("Needed more salt.", "Doubled the garlic.", "Kids loved it.", "Oven runs hot, reduce by 10C.",
                "Swapped the cream for yoghurt.", "Took longer than stated.", "Perfect as written.",
                "Used frozen peas.", "Next time: less chilli.", "Great for meal prep.", "Burnt the first batch.")
FAILURE_REASONS = ("probe_disconnected", "temperature_out_of_range", "lid_open_timeout", "power_interrupted",
                   "ingredient_missing", "user_aborted", "device_offline")
