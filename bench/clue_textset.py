"""The clue engine's text test set: street signs over real photos, with their truth.

Signs are drawn the way GeoSynth draws its town signs (a board in the country's sign colours from the
GeoSynth cue table where the country is in it, text in Noto fonts from GeoSynth's font book, first
line in the country's script), but full size and with the lines an analyst meets on real signs and
shop fronts: a town name with a distance, a sentence in the country's language, a phone number (a
valid number from libphonenumber's metadata, international or national format) and a web address
under the country's ccTLD. Backgrounds are the photographs scikit-image ships in its wheel
(astronaut, coffee, chelsea, rocket, motorcycle, ...), cropped and scaled at random.

Each language has two disjoint pools of towns and sentences, written for this set: the **scored**
split (``test``: three towns, three sentences) and the **development** split (``dev``: three other
towns, four other sentences). Thresholds and engine choices are tuned on ``dev`` only; the figures
that count are measured on ``test``. Each split is deterministic for a seed.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

from PIL import Image, ImageDraw, ImageFont

_NOTO = "/usr/share/fonts/truetype/noto/"
_CJK = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
FONTS: dict[str, tuple[str, int]] = {
    "Latn": (_NOTO + "NotoSans-Regular.ttf", 0),
    "Cyrl": (_NOTO + "NotoSans-Regular.ttf", 0),
    "Grek": (_NOTO + "NotoSans-Regular.ttf", 0),
    "Arab": (_NOTO + "NotoSansArabic-Regular.ttf", 0),
    "Hebr": (_NOTO + "NotoSansHebrew-Regular.ttf", 0),
    "Deva": (_NOTO + "NotoSansDevanagari-Regular.ttf", 0),
    "Thai": (_NOTO + "NotoSansThai-Regular.ttf", 0),
    "Kore": (_CJK, 1),
    "Jpan": (_CJK, 0),
    "Hans": (_CJK, 2),
}


@dataclass(frozen=True, slots=True)
class Language:
    code: str
    script: str
    country: str
    tld: str
    towns: tuple[str, ...]  # scored split
    sentences: tuple[str, ...]  # scored split
    dev_towns: tuple[str, ...]  # development split: never scored
    dev_sentences: tuple[str, ...]

    def pool(self, split: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """The towns and sentences of ``split`` ("test" or "dev")."""
        if split == "test":
            return self.towns, self.sentences
        if split == "dev":
            return self.dev_towns, self.dev_sentences
        raise ValueError(f"unknown split {split!r}; use 'test' or 'dev'")


LANGUAGES: tuple[Language, ...] = (
    Language(
        "de",
        "Latn",
        "DE",
        "de",
        ("München", "Köln", "Düsseldorf"),
        ("Willkommen in der Stadt", "Bitte langsam fahren", "Öffnungszeiten täglich"),
        ("Lübeck", "Göttingen", "Würzburg"),
        (
            "Hier ist das Rauchen verboten",
            "Bitte den Rasen nicht betreten",
            "Frische Brötchen jeden Morgen",
            "Ausfahrt bitte freihalten",
        ),
    ),
    Language(
        "fr",
        "Latn",
        "FR",
        "fr",
        ("Orléans", "Besançon", "Nîmes"),
        ("Bienvenue dans notre ville", "Centre commercial ouvert", "Stationnement interdit"),
        ("Châlons", "Périgueux", "Fréjus"),
        (
            "Défense de fumer dans le hall",
            "Boulangerie ouverte le dimanche",
            "Sortie de secours à gauche",
            "Réservé aux véhicules de livraison",
        ),
    ),
    Language(
        "es",
        "Latn",
        "ES",
        "es",
        ("Málaga", "Córdoba", "Cádiz"),
        ("Bienvenidos a la ciudad", "Prohibido estacionar aquí", "Farmacia abierta todos los días"),
        ("León", "Almería", "Logroño"),
        (
            "Salida de emergencia a la derecha",
            "Panadería abierta desde las siete",
            "No se permite fumar en el local",
            "Entrada solo para residentes",
        ),
    ),
    Language(
        "pl",
        "Latn",
        "PL",
        "pl",
        ("Łódź", "Gdańsk", "Kraków"),
        ("Witamy w naszym mieście", "Zakaz parkowania", "Apteka całodobowa"),
        ("Poznań", "Wrocław", "Białystok"),
        (
            "Palenie tytoniu surowo wzbronione",
            "Wyjście ewakuacyjne po prawej stronie",
            "Sklep spożywczy czynny od rana",
            "Uwaga na przejeżdżające pociągi",
        ),
    ),
    Language(
        "cs",
        "Latn",
        "CZ",
        "cz",
        ("Plzeň", "Brno", "Olomouc"),
        ("Vítejte v našem městě", "Zákaz parkování", "Lékárna otevřena denně"),
        ("České Budějovice", "Ústí nad Labem", "Třebíč"),
        (
            "Kouření je zde přísně zakázáno",
            "Vstup pouze pro zaměstnance",
            "Pekárna otevřena každé ráno",
            "Pozor na projíždějící vlaky",
        ),
    ),
    Language(
        "tr",
        "Latn",
        "TR",
        "tr",
        ("İzmir", "Eskişehir", "Muğla"),
        ("Şehrimize hoş geldiniz", "Park etmek yasaktır", "Eczane her gün açık"),
        ("Çanakkale", "Şanlıurfa", "Kütahya"),
        (
            "Sigara içmek kesinlikle yasaktır",
            "Acil çıkış sağ taraftadır",
            "Taze ekmek her sabah burada",
            "Lütfen kapıyı kapalı tutunuz",
        ),
    ),
    Language(
        "ru",
        "Cyrl",
        "RU",
        "ru",
        ("Москва", "Новосибирск", "Екатеринбург"),
        ("Добро пожаловать в город", "Стоянка запрещена", "Аптека работает круглосуточно"),
        ("Санкт-Петербург", "Владивосток", "Казань"),
        (
            "Курение здесь строго запрещено",
            "Запасной выход находится справа",
            "Свежий хлеб каждое утро",
            "Осторожно, проходящие поезда",
        ),
    ),
    Language(
        "uk",
        "Cyrl",
        "UA",
        "ua",
        ("Київ", "Львів", "Харків"),
        ("Ласкаво просимо до міста", "Стоянку заборонено", "Аптека працює цілодобово"),
        ("Одеса", "Дніпро", "Запоріжжя"),
        (
            "Курити тут суворо заборонено",
            "Запасний вихід знаходиться праворуч",
            "Свіжий хліб щоранку",
            "Обережно, потяги проїжджають",
        ),
    ),
    Language(
        "bg",
        "Cyrl",
        "BG",
        "bg",
        ("София", "Пловдив", "Варна"),
        ("Добре дошли в града", "Паркирането е забранено", "Аптеката работи денонощно"),
        ("Бургас", "Русе", "Стара Загора"),
        (
            "Пушенето тук е строго забранено",
            "Аварийният изход е вдясно",
            "Пресен хляб всяка сутрин",
            "Внимание, преминаващи влакове",
        ),
    ),
    Language(
        "el",
        "Grek",
        "GR",
        "gr",
        ("Αθήνα", "Θεσσαλονίκη", "Πάτρα"),
        ("Καλώς ήρθατε στην πόλη", "Απαγορεύεται η στάθμευση", "Φαρμακείο ανοιχτό καθημερινά"),
        ("Ηράκλειο", "Λάρισα", "Βόλος"),
        (
            "Απαγορεύεται αυστηρά το κάπνισμα",
            "Η έξοδος κινδύνου είναι δεξιά",
            "Φρέσκο ψωμί κάθε πρωί",
            "Προσοχή στα διερχόμενα τρένα",
        ),
    ),
    Language(
        "ar",
        "Arab",
        "EG",
        "eg",
        ("القاهرة", "الإسكندرية", "أسوان"),
        ("مرحبا بكم في المدينة", "ممنوع الوقوف هنا", "صيدلية مفتوحة طوال اليوم"),
        ("الجيزة", "الأقصر", "بورسعيد"),
        ("التدخين ممنوع منعا باتا", "مخرج الطوارئ على اليمين", "خبز طازج كل صباح", "انتبه للقطارات المارة"),
    ),
    Language(
        "he",
        "Hebr",
        "IL",
        "il",
        ("ירושלים", "חיפה", "באר שבע"),
        ("ברוכים הבאים לעיר", "החניה אסורה כאן", "בית מרקחת פתוח כל יום"),
        ("תל אביב", "אילת", "נתניה"),
        ("העישון אסור בהחלט", "יציאת חירום נמצאת מימין", "לחם טרי בכל בוקר", "זהירות רכבות עוברות"),
    ),
    Language(
        "hi",
        "Deva",
        "IN",
        "in",
        ("दिल्ली", "जयपुर", "लखनऊ"),
        ("शहर में आपका स्वागत है", "यहाँ पार्किंग मना है", "दवाखाना रोज़ खुला रहता है"),
        ("मुंबई", "कोलकाता", "पटना"),
        (
            "यहाँ धूम्रपान करना सख्त मना है",
            "आपातकालीन निकास दाईं ओर है",
            "हर सुबह ताज़ी रोटी मिलती है",
            "गुजरती रेलगाड़ियों से सावधान रहें",
        ),
    ),
    Language(
        "th",
        "Thai",
        "TH",
        "th",
        ("เชียงใหม่", "ภูเก็ต", "ขอนแก่น"),
        ("ยินดีต้อนรับสู่เมือง", "ห้ามจอดรถบริเวณนี้", "ร้านขายยาเปิดทุกวัน"),
        ("พัทยา", "อุดรธานี", "นครราชสีมา"),
        ("ห้ามสูบบุหรี่โดยเด็ดขาด", "ทางออกฉุกเฉินอยู่ทางขวา", "ขนมปังสดใหม่ทุกเช้า", "ระวังรถไฟผ่าน"),
    ),
    Language(
        "ko",
        "Kore",
        "KR",
        "kr",
        ("서울", "부산", "대구"),
        ("우리 도시에 오신 것을 환영합니다", "이곳은 주차 금지 구역입니다", "약국은 매일 영업합니다"),
        ("인천", "광주", "대전"),
        (
            "이곳에서는 흡연이 엄격히 금지됩니다",
            "비상구는 오른쪽에 있습니다",
            "매일 아침 신선한 빵",
            "지나가는 기차를 조심하세요",
        ),
    ),
    Language(
        "ja",
        "Jpan",
        "JP",
        "jp",
        ("東京", "大阪", "札幌"),
        ("私たちの町へようこそ", "ここに駐車しないでください", "薬局は毎日営業しています"),
        ("名古屋", "福岡", "横浜"),
        (
            "ここでの喫煙は固く禁止されています",
            "非常口は右側にあります",
            "毎朝焼きたてのパンがあります",
            "通過する電車にご注意ください",
        ),
    ),
    Language(
        "zh",
        "Hans",
        "CN",
        "cn",
        ("北京", "上海", "广州"),
        ("欢迎来到我们的城市", "此处禁止停车", "药店每天营业"),
        ("深圳", "成都", "杭州"),
        ("此处严禁吸烟", "紧急出口在右侧", "每天早上新鲜面包", "注意来往的火车"),
    ),
)

# How signs in each script write "km" (Latin letters where the sign font has them).
UNITS = {"Cyrl": "км", "Grek": "χλμ", "Arab": "كم", "Hebr": 'ק"מ', "Deva": "कि.मी.", "Thai": "กม."}

BACKGROUNDS = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "brick",
    "grass",
    "gravel",
    "hubble_deep_field",
    "retina",
    "camera",
)


@dataclass(frozen=True, slots=True)
class TruthLine:
    text: str
    kind: str  # town | sentence | phone | web
    script: str


@dataclass(slots=True)
class Sample:
    id: str
    language: Language
    image: Image.Image
    lines: list[TruthLine] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "language": self.language.code,
            "country": self.language.country,
            "lines": [{"text": t.text, "kind": t.kind, "script": t.script} for t in self.lines],
        }


def _background(name: str, rng: random.Random, size: tuple[int, int]) -> Image.Image:
    from skimage import data

    array = getattr(data, name)()
    image = Image.fromarray(array).convert("RGB")
    scale = max(size[0] / image.width, size[1] / image.height) * rng.uniform(1.0, 1.4)
    image = image.resize(
        (max(size[0], round(image.width * scale)), max(size[1], round(image.height * scale)))
    )
    x = rng.randrange(0, image.width - size[0] + 1)
    y = rng.randrange(0, image.height - size[1] + 1)
    return image.crop((x, y, x + size[0], y + size[1]))


def _style(country: str) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """Board and text colours: the country's GeoSynth sign colours when the cue table has it."""
    from training.geosynth import cues

    entry = cues.BY_CODE.get(country)
    if entry is None:
        return cues.RGB["blue"], cues.RGB["white"]
    return cues.RGB[entry.sign_style.board], cues.RGB[entry.sign_style.text]


def _phone(country: str, rng: random.Random) -> str:
    import phonenumbers
    from phonenumbers import PhoneNumberFormat, PhoneNumberType

    number = phonenumbers.example_number_for_type(
        country, PhoneNumberType.FIXED_LINE
    ) or phonenumbers.example_number(country)
    fmt = PhoneNumberFormat.INTERNATIONAL if rng.random() < 0.7 else PhoneNumberFormat.NATIONAL
    return "Tel. " + phonenumbers.format_number(number, fmt)


_WEB_NAMES = ("centrum", "hotel", "apteka", "city", "info", "market", "travel", "shop")


SPLITS = ("test", "dev")


def make_sample(index: int, seed: int, size: tuple[int, int] = (720, 540), split: str = "test") -> Sample:
    rng = random.Random(f"{seed}:{index}")
    language = LANGUAGES[index % len(LANGUAGES)]
    towns, sentences = language.pool(split)
    image = _background(BACKGROUNDS[rng.randrange(len(BACKGROUNDS))], rng, size)
    town = towns[rng.randrange(len(towns))]
    # Kanji alone do not tell Japanese from Chinese: such a town name is Han script.
    town_script = (
        "Hans"
        if language.script == "Jpan" and not any("\u3040" <= ch <= "\u30ff" for ch in town)
        else language.script
    )
    unit = UNITS.get(language.script, "km")
    lines = [
        TruthLine(f"{town} {rng.randint(2, 48)} {unit}", "town", town_script),
        TruthLine(sentences[rng.randrange(len(sentences))], "sentence", language.script),
    ]
    if rng.random() < 0.7:
        lines.append(TruthLine(_phone(language.country, rng), "phone", "Latn"))
    if rng.random() < 0.6:
        lines.append(
            TruthLine(
                f"www.{_WEB_NAMES[rng.randrange(len(_WEB_NAMES))]}-{index}.{language.tld}", "web", "Latn"
            )
        )
    board, ink = _style(language.country)
    draw = ImageDraw.Draw(image)
    font_path, font_index = FONTS[language.script]
    latin_path, latin_index = FONTS["Latn"]
    sizes = [rng.randint(34, 44) if t.kind in ("town", "sentence") else rng.randint(26, 32) for t in lines]
    faces = [
        ImageFont.truetype(
            font_path if t.script != "Latn" or t.kind in ("town", "sentence") else latin_path,
            s,
            index=font_index if t.script != "Latn" or t.kind in ("town", "sentence") else latin_index,
        )
        for t, s in zip(lines, sizes, strict=True)
    ]
    boxes = [draw.textbbox((0, 0), t.text, font=f) for t, f in zip(lines, faces, strict=True)]
    width = max(b[2] - b[0] for b in boxes) + 40
    height = sum(b[3] - b[1] for b in boxes) + 18 * (len(lines) - 1) + 40
    if width > size[0] - 20:  # too wide: shrink every face to fit
        factor = (size[0] - 20) / width
        faces = [
            ImageFont.truetype(
                f.path, max(14, round(s * factor)), index=f.index if hasattr(f, "index") else 0
            )
            for f, s in zip(faces, sizes, strict=True)
        ]
        boxes = [draw.textbbox((0, 0), t.text, font=f) for t, f in zip(lines, faces, strict=True)]
        width = max(b[2] - b[0] for b in boxes) + 40
        height = sum(b[3] - b[1] for b in boxes) + 18 * (len(lines) - 1) + 40
    x0 = rng.randrange(10, max(11, size[0] - width - 10))
    y0 = rng.randrange(10, max(11, size[1] - height - 10))
    draw.rectangle((x0, y0, x0 + width, y0 + height), fill=board, outline=(230, 230, 230), width=3)
    y = y0 + 20
    for t, f, b in zip(lines, faces, boxes, strict=True):
        draw.text((x0 + 20 - b[0], y - b[1]), t.text, font=f, fill=ink)
        y += (b[3] - b[1]) + 18
    prefix = "sign" if split == "test" else "dev-sign"
    return Sample(f"{prefix}-{seed}-{index:04d}", language, image, lines)


def sign_photo(lines: list[str], country: str, seed: str, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A close-up photo of a GeoSynth town sign: its lines on a board in the country's sign colours,
    the first in its script's Noto font, over one of the background photos."""
    from geodesk.clues.languages import line_script

    rng = random.Random(seed)
    image = _background(BACKGROUNDS[rng.randrange(len(BACKGROUNDS))], rng, size)
    draw = ImageDraw.Draw(image)
    board, ink = _style(country)
    faces = []
    for k, text in enumerate(lines):
        script = line_script(text)
        path, index = FONTS.get(script.script if script else "Latn", FONTS["Latn"])
        faces.append(ImageFont.truetype(path, 48 if k == 0 else 36, index=index))
    boxes = [draw.textbbox((0, 0), t, font=f) for t, f in zip(lines, faces, strict=True)]
    width = min(size[0] - 20, max(b[2] - b[0] for b in boxes) + 40)
    height = sum(b[3] - b[1] for b in boxes) + 18 * (len(lines) - 1) + 40
    x0 = rng.randrange(10, max(11, size[0] - width - 10))
    y0 = rng.randrange(10, max(11, size[1] - height - 10))
    draw.rectangle((x0, y0, x0 + width, y0 + height), fill=board, outline=(230, 230, 230), width=3)
    y = y0 + 20
    for t, f, b in zip(lines, faces, boxes, strict=True):
        draw.text((x0 + 20 - b[0], y - b[1]), t, font=f, fill=ink)
        y += (b[3] - b[1]) + 18
    return image
