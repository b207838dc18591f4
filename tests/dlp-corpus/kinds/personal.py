"""Personal data: emails, phone numbers, payment cards, IBANs and national ids.

Every value is fabricated with a valid checksum (or a deliberately reserved range): numbers are
drawn at random and their check digits computed, so none is a real person's data. Phone numbers
use the national number lengths of their country; names are drawn from a short list of
invented ones.
"""

from __future__ import annotations

import random

from . import DIGITS, LOWER, UPPER, Kind, Secret, Snippet, rand

# -- checksums ---------------------------------------------------------------------------------


def luhn_digit(body: str) -> str:
    total = 0
    for i, c in enumerate(reversed(body)):
        d = int(c)
        if i % 2 == 0:
            d = d * 2 - 9 if d * 2 > 9 else d * 2
        total += d
    return str((10 - total % 10) % 10)


def iban(country: str, bban: str) -> str:
    rearranged = bban + country + "00"
    number = int("".join(str(int(c, 36)) for c in rearranged))
    return f"{country}{98 - number % 97:02d}{bban}"


_VD = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 2, 3, 4, 0, 6, 7, 8, 9, 5], [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7], [4, 0, 1, 2, 3, 9, 5, 6, 7, 8], [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2], [7, 6, 5, 9, 8, 2, 1, 0, 4, 3], [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_VP = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], [1, 5, 7, 6, 2, 8, 3, 0, 9, 4], [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7], [9, 4, 5, 3, 1, 2, 6, 8, 7, 0], [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5], [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]
_VINV = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]


def verhoeff_digit(body: str) -> str:
    c = 0
    for i, ch in enumerate(reversed(body)):
        c = _VD[c][_VP[(i + 1) % 8][int(ch)]]
    return str(_VINV[c])


def cpf(body9: str) -> str:
    digits = [int(c) for c in body9]
    for length in (9, 10):
        s = sum(d * (length + 1 - i) for i, d in enumerate(digits[:length]))
        digits.append(s * 10 % 11 % 10)
    return "".join(map(str, digits))


def de_tax_id(rng: random.Random) -> str:
    """Ten digits where one digit occurs twice (never three in a row), then MOD 11,10."""
    while True:
        pool = rng.sample("0123456789", 9)
        twice = rng.choice(pool)
        body = pool + [twice]
        rng.shuffle(body)
        if body[0] == "0" or any(body[i] == body[i + 1] == body[i + 2] for i in range(8)):
            continue
        product = 10
        for c in body:
            s = (int(c) + product) % 10 or 10
            product = s * 2 % 11
        return "".join(body) + str((11 - product) % 10)


def nir(rng: random.Random, corsica: bool = False) -> str:
    sex = rng.choice("12")
    year = f"{rng.randrange(100):02d}"
    month = f"{rng.randrange(1, 13):02d}"
    dept = rng.choice(["2A", "2B"]) if corsica else f"{rng.choice([1, 6, 13, 31, 33, 44, 59, 69, 75, 92, 93, 94]):02d}"
    commune, order = f"{rng.randrange(1, 990):03d}", f"{rng.randrange(1, 1000):03d}"
    number = int(sex + year + month + {"2A": "19", "2B": "18"}.get(dept, dept) + commune + order)
    return f"{sex}{year}{month}{dept}{commune}{order}{97 - number % 97:02d}"


def nino(rng: random.Random) -> str:
    first = "ABCEGHJKLMNOPRSTWXYZ"
    second = "ABCEGHJKLMNPRSTWXYZ"
    while True:
        prefix = rng.choice(first) + rng.choice(second)
        if prefix not in {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}:
            return prefix + rand(rng, DIGITS, 6) + rng.choice("ABCD")


def aadhaar(rng: random.Random) -> str:
    body = rng.choice("23456789") + rand(rng, DIGITS, 10)
    return body + verhoeff_digit(body)


def pan(rng: random.Random) -> str:
    return rand(rng, UPPER, 3) + rng.choice("PCHFATBLJG") + rand(rng, UPPER, 1) + rand(rng, DIGITS, 4) + rand(rng, UPPER, 1)


def dni(rng: random.Random, nie: bool = False) -> str:
    letters = "TRWAGMYFPDXBNJZSQVHLCKE"
    if nie:
        lead = rng.randrange(3)
        body = rand(rng, DIGITS, 7)
        return "XYZ"[lead] + body + letters[int(f"{lead}{body}") % 23]
    body = rand(rng, DIGITS, 8)
    return body + letters[int(body) % 23]


def bsn(rng: random.Random) -> str:
    while True:
        body = rng.choice("123456789") + rand(rng, DIGITS, 7)
        s = sum(int(c) * (9 - i) for i, c in enumerate(body))
        last = s % 11
        if last < 10:
            return body + str(last)


def sin(rng: random.Random) -> str:
    body = rng.choice("1234567") + rand(rng, DIGITS, 7)
    return body + luhn_digit(body)


_CF_ODD = [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23]


def codice_fiscale(rng: random.Random) -> str:
    body = (
        rand(rng, UPPER, 6) + f"{rng.randrange(100):02d}" + rng.choice("ABCDEHLMPRST")
        + f"{rng.randrange(1, 72):02d}" + rng.choice(UPPER) + rand(rng, DIGITS, 3)
    )
    total = 0
    for i, c in enumerate(body):
        index = int(c) if c.isdigit() else ord(c) - 65
        total += _CF_ODD[index] if i % 2 == 0 else index
    return body + chr(65 + total % 26)


def cn_id(rng: random.Random) -> str:
    body = (
        rng.choice("123456") + rand(rng, DIGITS, 5) + str(rng.randrange(1940, 2010))
        + f"{rng.randrange(1, 13):02d}" + f"{rng.randrange(1, 29):02d}" + rand(rng, DIGITS, 3)
    )
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    return body + "10X98765432"[sum(int(c) * w for c, w in zip(body, weights)) % 11]


# -- formats -----------------------------------------------------------------------------------


def grouped(value: str, sizes: list[int], sep: str = " ") -> str:
    parts, at = [], 0
    for size in sizes:
        parts.append(value[at : at + size])
        at += size
    return sep.join(p for p in parts if p)


def labelled(labels: list[str], value_of):
    """A `Snippet` of a label, a separator and the value (private)."""

    def make(rng: random.Random) -> Snippet:
        label = rng.choice(labels)
        sep = rng.choice([": ", " ", "=", " = ", ": "])
        value = value_of(rng)
        text = f"{label}{sep}{value}"
        return Snippet(text, ((len(text) - len(value), len(text)),))

    return make


def phone_intl(rng: random.Random) -> Secret:
    formats = [
        lambda: f"+44 20 {rand(rng, DIGITS, 4)} {rand(rng, DIGITS, 4)}",
        lambda: f"+44 7{rand(rng, DIGITS, 3)} {rand(rng, DIGITS, 6)}",
        lambda: f"+49 (0)30 {rng.choice('123456789')}{rand(rng, DIGITS, 6)}",
        lambda: f"+49 151 {rand(rng, DIGITS, 8)}",
        lambda: "+33 6 " + " ".join(rand(rng, DIGITS, 2) for _ in range(4)),
        lambda: f"+91 9{rand(rng, DIGITS, 4)} {rand(rng, DIGITS, 5)}",
        lambda: f"+55 11 9{rand(rng, DIGITS, 4)}-{rand(rng, DIGITS, 4)}",
        lambda: f"+81 3-{rand(rng, DIGITS, 4)}-{rand(rng, DIGITS, 4)}",
        lambda: f"+34 6{rand(rng, DIGITS, 2)} {rand(rng, DIGITS, 3)} {rand(rng, DIGITS, 3)}",
        lambda: f"+39 3{rand(rng, DIGITS, 2)} {rand(rng, DIGITS, 7)}",
        lambda: f"+31 6 {rand(rng, DIGITS, 8)}",
        lambda: f"+61 4{rand(rng, DIGITS, 2)} {rand(rng, DIGITS, 3)} {rand(rng, DIGITS, 3)}",
        lambda: f"+86 13{rand(rng, DIGITS, 1)} {rand(rng, DIGITS, 4)} {rand(rng, DIGITS, 4)}",
        lambda: f"+1 {rng.choice('23456789')}{rand(rng, DIGITS, 2)}-{rng.choice('23456789')}{rand(rng, DIGITS, 2)}-{rand(rng, DIGITS, 4)}",
        lambda: f"+4420{rand(rng, DIGITS, 8)}",
        lambda: f"0044 20 {rand(rng, DIGITS, 4)} {rand(rng, DIGITS, 4)}",
        lambda: f"00 49 30 {rng.choice('123456789')}{rand(rng, DIGITS, 7)}",
        lambda: f"+27 82 {rand(rng, DIGITS, 3)} {rand(rng, DIGITS, 4)}",
        lambda: f"+234 803 {rand(rng, DIGITS, 3)} {rand(rng, DIGITS, 4)}",
        lambda: f"+971 50 {rand(rng, DIGITS, 3)} {rand(rng, DIGITS, 4)}",
    ]
    return Secret(rng.choice(formats)())


def phone_national(rng: random.Random) -> Secret:
    formats = [
        lambda: f"07{rand(rng, DIGITS, 3)} {rand(rng, DIGITS, 6)}",
        lambda: f"020 {rng.choice('3789')}{rand(rng, DIGITS, 3)} {rand(rng, DIGITS, 4)}",
        lambda: "06 " + " ".join(rand(rng, DIGITS, 2) for _ in range(4)),
        lambda: "07." + ".".join(rand(rng, DIGITS, 2) for _ in range(4)),
        lambda: f"0151 {rand(rng, DIGITS, 8)}",
        lambda: f"(415) {rng.choice('23456789')}{rand(rng, DIGITS, 2)}-{rand(rng, DIGITS, 4)}",
        lambda: f"{rng.choice('23456789')}{rand(rng, DIGITS, 2)}-{rng.choice('23456789')}{rand(rng, DIGITS, 2)}-{rand(rng, DIGITS, 4)}",
        lambda: f"tel:+44{rand(rng, DIGITS, 10)}",
    ]
    return Secret(rng.choice(formats)())


def card(rng: random.Random) -> Secret:
    prefix, length, groups = rng.choice(
        [("4", 16, [4, 4, 4, 4]), ("51", 16, [4, 4, 4, 4]), ("2221", 16, [4, 4, 4, 4]), ("37", 15, [4, 6, 5]),
         ("6011", 16, [4, 4, 4, 4]), ("3528", 16, [4, 4, 4, 4])]
    )
    body = prefix + rand(rng, DIGITS, length - len(prefix) - 1)
    number = body + luhn_digit(body)
    return Secret(grouped(number, groups, rng.choice([" ", "-", ""])))


def ssn(rng: random.Random) -> Secret:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return Secret(f"{area:03d}-{rng.randrange(1, 100):02d}-{rng.randrange(1, 10000):04d}")


IBAN_BBANS = {
    "DE": "n18", "FR": "n10a11n2", "GB": "a4n14", "ES": "n20", "IT": "a1n10c12", "NL": "a4n10", "BE": "n12",
    "AT": "n16", "CH": "n5c12", "PL": "n24", "PT": "n21", "IE": "a4n14", "SE": "n20", "DK": "n14", "FI": "n14",
    "NO": "n11", "LU": "n3c13", "GR": "n7c16", "CZ": "n20", "SK": "n20", "HU": "n24", "RO": "a4c16",
    "BG": "a4n6c8", "HR": "n17", "SI": "n15", "EE": "n16", "LV": "a4c13", "LT": "n16", "MT": "a4n5c18",
    "CY": "n8c16", "IS": "n22", "LI": "n5c12", "MC": "n10c11n2", "SM": "a1n10c12", "VA": "n18",
    "AD": "n8c12", "GI": "a4c15", "TR": "n6c16", "SA": "n2c18", "AE": "n19", "BR": "n23a1c1",
}


def bban(rng: random.Random, spec: str) -> str:
    out, i = "", 0
    while i < len(spec):
        kind = spec[i]
        j = i + 1
        while j < len(spec) and spec[j].isdigit():
            j += 1
        count = int(spec[i + 1 : j])
        alphabet = {"n": DIGITS, "a": UPPER, "c": UPPER + DIGITS}[kind]
        out += rand(rng, alphabet, count)
        i = j
    return out


def iban_sample(rng: random.Random) -> Secret:
    country = rng.choice(sorted(IBAN_BBANS))
    value = iban(country, bban(rng, IBAN_BBANS[country]))
    if rng.random() < 0.5:
        value = grouped(value, [4] * 9)
    return Secret(value)


def email(rng: random.Random) -> Secret:
    first, last = rng.choice(["jane", "omar", "li", "ana", "ravi", "ingrid"]), rng.choice(["roe", "haddad", "wei", "silva", "nair"])
    local = rng.choice([f"{first}.{last}", f"{first}{rng.randrange(100)}", f"{first}+{rand(rng, LOWER, 5)}", f"{first[0]}{last}"])
    domain = rng.choice(["acme-corp.io", "mail.globex.co.uk", "initech.de", "umbrella-labs.fr", "hooli.com.br"])
    return Secret(f"{local}@{domain}")


NATIONAL_ID_LABELS = {
    "aadhaar": ["Aadhaar", "aadhaar_number", "Aadhaar No.", "UIDAI"],
    "cpf": ["CPF", "cpf", "CPF do titular"],
    "bsn": ["BSN", "burgerservicenummer"],
    "sin": ["SIN", "social insurance number", "Social Insurance No."],
}

KINDS = [
    Kind("email", "pii", email, (), "RFC 5322 addresses"),
    Kind("phone", "pii", phone_intl, (), "ITU-T E.164 international format"),
    Kind("phone", "pii", phone_national, (), "national formats: UK, FR, DE, NANP"),
    Kind(
        "phone-national", "pii",
        labelled(["Tel", "phone", "Telefon", "mobile", "Handy", "fax", "portable"],
                 lambda r: rng_pick(r, [f"030 {rand(r, DIGITS, 8)}", f"0{r.choice('2345689')}{rand(r, DIGITS, 8)}",
                                        f"07{rand(r, DIGITS, 9)}", f"089 {rand(r, DIGITS, 3)} {rand(r, DIGITS, 4)}"])),
        (), "national numbers next to a phone label",
    ),
    Kind("payment-card", "pii", card, (), "ISO/IEC 7812, Luhn"),
    Kind("us-ssn", "pii", ssn, ("ssn",), "SSA: SSN structure"),
    Kind("iban", "pii", iban_sample, (), "ISO 13616 IBAN registry"),
    Kind("uk-nino", "pii", lambda r: Secret(rng_pick(r, [nino(r), grouped(nino(r), [2, 2, 2, 2, 1])])), ("NINO",), "HMRC NIM39110"),
    Kind("de-tax-id", "pii", lambda r: Secret(rng_pick(r, [de_tax_id(r), grouped(de_tax_id(r), [2, 3, 3, 3])])), ("Steuer-ID",), "BZSt: IdNr"),
    Kind("fr-nir", "pii", lambda r: Secret(rng_pick(r, [nir(r), grouped(nir(r), [1, 2, 2, 2, 3, 3, 2]), nir(r, True)])), ("numéro de sécurité sociale",), "INSEE: NIR"),
    Kind("in-aadhaar", "pii", lambda r: Secret(grouped(aadhaar(r), [4, 4, 4], r.choice([" ", "-"]))), ("Aadhaar",), "UIDAI: Verhoeff"),
    Kind("in-pan", "pii", lambda r: Secret(pan(r)), ("PAN",), "Income Tax Dept: PAN structure"),
    Kind("br-cpf", "pii", lambda r: Secret((lambda c: f"{c[:3]}.{c[3:6]}.{c[6:9]}-{c[9:]}")(cpf(rand(r, DIGITS, 9)))), ("CPF",), "Receita Federal: CPF"),
    Kind("es-dni", "pii", lambda r: Secret(dni(r, nie=r.random() < 0.4)), ("DNI",), "Ministerio del Interior: DNI/NIE letter"),
    Kind("it-codice-fiscale", "pii", lambda r: Secret(codice_fiscale(r)), ("codice fiscale",), "DM 12/03/1974: check character"),
    Kind("cn-resident-id", "pii", lambda r: Secret(cn_id(r)), ("身份证号",), "GB 11643-1999"),
    Kind("national-id", "pii", labelled(NATIONAL_ID_LABELS["aadhaar"], aadhaar), (), "UIDAI (compact, labelled)"),
    Kind("national-id", "pii", labelled(NATIONAL_ID_LABELS["cpf"], lambda r: cpf(rand(r, DIGITS, 9))), (), "CPF (compact, labelled)"),
    Kind("national-id", "pii", labelled(NATIONAL_ID_LABELS["bsn"], bsn), (), "BSN 11-test (labelled)"),
    Kind("national-id", "pii", labelled(NATIONAL_ID_LABELS["sin"], lambda r: grouped(sin(r), [3, 3, 3], r.choice([" ", "-", ""]))), (), "SIN Luhn (labelled)"),
]


def rng_pick(rng: random.Random, options: list):
    return rng.choice(options)
