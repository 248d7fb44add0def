"""COCO's 80 object categories with their plurals and common synonyms: the lexicon that rule caption_objects finds
objects by (method `lexicon`), and that maps any listed object name to the COCO category whose ground-truth
annotations it can be matched with (mention_order)."""
from functools import cache

# COCO's 80 instance categories -> the extra surface forms that name them (besides the name and its plural).
SYNONYMS = {
    "person": ["people", "persons", "man", "men", "woman", "women", "boy", "boys", "girl", "girls", "child",
               "children", "kid", "kids", "guy", "guys", "lady", "ladies", "baby", "babies", "player", "players",
               "skier", "skiers", "surfer", "surfers", "skateboarder", "skateboarders", "snowboarder", "snowboarders"],
    "bicycle": ["bike", "bikes"], "car": ["cars", "taxi", "taxis"], "motorcycle": ["motorbike", "motorbikes"],
    "airplane": ["plane", "planes", "jet", "jets", "aeroplane", "aeroplanes", "aircraft", "airliner", "airliners"],
    "bus": ["buses", "busses"], "train": [], "truck": ["lorry", "lorries"], "boat": ["ship", "ships"],
    "traffic light": ["traffic signal", "traffic signals", "stoplight", "stoplights"],
    "fire hydrant": ["hydrant", "hydrants"], "stop sign": [], "parking meter": [], "bench": ["benches"],
    "bird": [], "cat": ["kitten", "kittens"], "dog": ["puppy", "puppies"], "horse": ["pony", "ponies"],
    "sheep": ["lamb", "lambs"], "cow": ["cattle", "calf", "calves"], "elephant": [], "bear": [], "zebra": [],
    "giraffe": [], "backpack": [], "umbrella": [], "handbag": ["purse", "purses"], "tie": ["necktie", "neckties"],
    "suitcase": ["luggage"], "frisbee": [], "skis": ["ski"], "snowboard": [],
    "sports ball": ["ball", "balls", "soccer ball", "football", "basketball", "tennis ball", "tennis balls"],
    "kite": [], "baseball bat": ["bat", "bats"], "baseball glove": ["glove", "gloves", "mitt", "mitts"],
    "skateboard": [], "surfboard": [], "tennis racket": ["racket", "rackets", "racquet", "racquets"],
    "bottle": [], "wine glass": ["wineglass", "wineglasses", "wine glasses"], "cup": ["mug", "mugs"],
    "fork": [], "knife": ["knives"], "spoon": [], "bowl": [], "banana": [], "apple": [], "sandwich": ["sandwiches"],
    "orange": [], "broccoli": [], "carrot": [], "hot dog": ["hotdog", "hotdogs"], "pizza": [],
    "donut": ["doughnut", "doughnuts"], "cake": [], "chair": [], "couch": ["couches", "sofa", "sofas"],
    "potted plant": ["houseplant", "houseplants", "plant", "plants"], "bed": [],
    "dining table": ["table", "tables"], "toilet": [], "tv": ["tvs", "television", "televisions"], "laptop": [],
    "mouse": ["mice"], "remote": ["remote control", "remote controls"], "keyboard": [],
    "cell phone": ["phone", "phones", "cellphone", "cellphones", "smartphone", "smartphones", "mobile phone"],
    "microwave": [], "oven": [], "toaster": [], "sink": [], "refrigerator": ["fridge", "fridges"], "book": [],
    "clock": [], "vase": [], "scissors": [], "teddy bear": ["teddy", "teddies"],
    "hair drier": ["hair dryer", "hair dryers", "hairdryer", "blow dryer"], "toothbrush": ["toothbrushes"],
}
NO_PLURAL = {"sheep", "skis", "scissors", "broccoli", "sports ball", "person", "bus", "bench", "sandwich", "couch",
             "knife", "mouse", "toothbrush", "wine glass", "tv", "cell phone"}


def plural(name: str) -> str:
    """The regular English plural of a category name's last word (irregular ones are listed in SYNONYMS)."""
    if name.endswith(("s", "x", "ch", "sh")):
        return name + "es"
    if name.endswith("y") and name[-2:-1] not in "aeiou":
        return name[:-1] + "ies"
    return name + "s"


@cache
def lexicon() -> dict[tuple[str, ...], str]:
    """{surface form as lower-case words: COCO category}: each name, its plural and its synonyms."""
    forms = {}
    for category, synonyms in SYNONYMS.items():
        for form in [category, *([] if category in NO_PLURAL else [plural(category)]), *synonyms]:
            forms[tuple(form.split())] = category
    return forms


def coco_category(name: str) -> str | None:
    """The COCO category a listed object name stands for: the lexicon's form for the whole name, else for its last
    word ('red car' -> car); None when neither is a form."""
    words = tuple(name.lower().split())
    return lexicon().get(words) or (lexicon().get(words[-1:]) if words else None)
