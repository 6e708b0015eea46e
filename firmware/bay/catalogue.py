"""The bay screen's words in English, German, French and Dutch, and the numbers, dates and
money formatted per language.

Formatting is hand-rolled: four languages need a decimal sign, a grouping sign, where
the currency goes and one date pattern each (CLDR's choices for en-GB, de-DE, fr-FR,
nl-NL, checked in tests/test_bay_screen.py); Babel would bring the whole CLDR for that.
Every catalogue has the same keys (a test checks), and ``render`` turns a screen View
(firmware/bay/screen.py) into the strings and buttons the page draws.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from firmware.bay.screen import Bay, BayState, Page, View, km_added
from firmware.bay.tariff import Currency, Tariffs, gross
from firmware.core.events import StopReason
from firmware.errors import ErrorCode


@dataclass(frozen=True, slots=True)
class NumberStyle:
    decimal: str
    group: str
    money: str  # {n} the number, {c} the currency sign
    date: str  # strftime pattern


NNBSP = "\u202f"  # narrow no-break space: French grouping and the sign's gap (CLDR)
STYLES = {
    "en": NumberStyle(".", ",", "{c}{n}", "%d/%m/%Y %H:%M"),
    "de": NumberStyle(",", ".", "{n}\u00a0{c}", "%d.%m.%Y %H:%M"),
    "fr": NumberStyle(",", NNBSP, "{n}\u00a0{c}", "%d/%m/%Y %H:%M"),
    "nl": NumberStyle(",", ".", "{c}\u00a0{n}", "%d-%m-%Y %H:%M"),
}
SIGNS = {"EUR": "€", "GBP": "£", "CHF": "CHF", "SEK": "kr", "DKK": "kr", "NOK": "kr",
         "PLN": "zł"}


def number(value: float | Decimal, places: int, lang: str) -> str:
    style = STYLES[lang]
    q = Decimal(1).scaleb(-places)
    d = Decimal(str(value)).quantize(q, rounding=ROUND_HALF_UP)
    sign = "-" if d < 0 else ""
    whole, _, frac = f"{abs(d):f}".partition(".")
    groups: list[str] = []
    while len(whole) > 3:
        groups.insert(0, whole[-3:])
        whole = whole[:-3]
    groups.insert(0, whole)
    text = style.group.join(groups)
    return sign + (text + style.decimal + frac if frac else text)


def money(amount: Decimal, currency: Currency, lang: str, places: int | None = None) -> str:
    n = number(amount, currency.minor_units if places is None else places, lang)
    return STYLES[lang].money.format(n=n, c=SIGNS.get(currency.code, currency.code))


def date(moment: datetime, lang: str) -> str:
    return moment.strftime(STYLES[lang].date)


def duration(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


T: dict[str, dict[str, str]] = {
    "en": {
        "home": "Choose your connector", "connector": "Connector {n}",
        "available": "Available", "connected": "Cable connected",
        "authorized": "Authorized", "charging": "Charging", "finished": "Finished",
        "reserved": "Reserved", "out_of_order": "Out of order",
        "tariff": "Price at connector {n}",
        "per_kwh": "{p} per kWh", "per_session": "{p} per session",
        "per_minute": "{p} per minute of charging",
        "occupation": "{p} per minute when parked more than {m} min after charging",
        "incl_vat": "incl. {v} % VAT ({g} per kWh)", "emsp": "Charging card: your provider's price",
        "pay_card": "Pay by card", "rfid": "Charging card", "app": "Start in the app",
        "app_hint": "In the app, choose charge point {id}, connector {n}.",
        "connect_first": "Connect the cable first, then select the connector showing "
                         "'Cable connected'.",
        "paying": "Follow the instructions on the card terminal.",
        "reserve": "{p} will be reserved on your card; you pay only what you charge.",
        "declined": "Payment not accepted", "declined_hint": "Please try another card.",
        "refused": "Card not accepted", "tap_card": "Hold your charging card to the reader.",
        "waiting": "Authorized. Starting the charge...",
        "hints": "Nothing happening? Push the connector fully into the inlet. Check your "
                 "phone's connection (free site Wi-Fi). End the session and try again. "
                 "Then call support: {phone}.",
        "energy": "Energy", "power": "Power", "soc": "Battery", "cost": "Cost so far",
        "elapsed": "Time", "km": "Range added", "total": "Total incl. VAT",
        "net": "Net", "vat": "VAT {v} %", "stop": "Stop charging",
        "confirm_stop": "Stop charging at connector {n}?", "confirm": "Yes, stop",
        "back": "Back", "home_button": "Home", "receipt": "Receipt",
        "move": "Please move your truck when your break is over.",
        "fault": "Connector {n} is out of order", "error_code": "Error code {code}",
        "support": "Support: {phone}", "cost_unknown": "Cost shown on your invoice",
        "stopped": "Charging ended: {reason}",
    },
    "de": {
        "home": "Wählen Sie Ihren Ladepunkt", "connector": "Ladepunkt {n}",
        "available": "Frei", "connected": "Kabel verbunden", "authorized": "Freigegeben",
        "charging": "Lädt", "finished": "Beendet", "reserved": "Reserviert",
        "out_of_order": "Außer Betrieb", "tariff": "Preis an Ladepunkt {n}",
        "per_kwh": "{p} pro kWh", "per_session": "{p} pro Ladevorgang",
        "per_minute": "{p} pro Minute Laden",
        "occupation": "{p} pro Minute bei mehr als {m} Min. Standzeit nach dem Laden",
        "incl_vat": "inkl. {v} % MwSt. ({g} pro kWh)",
        "emsp": "Ladekarte: der Preis Ihres Anbieters", "pay_card": "Mit Karte zahlen",
        "rfid": "Ladekarte", "app": "In der App starten",
        "app_hint": "Wählen Sie in der App Ladestation {id}, Ladepunkt {n}.",
        "connect_first": "Bitte zuerst das Kabel einstecken, dann den Ladepunkt mit "
                         "'Kabel verbunden' wählen.",
        "paying": "Bitte folgen Sie den Anweisungen am Kartenterminal.",
        "reserve": "{p} werden auf Ihrer Karte reserviert; Sie zahlen nur, was Sie laden.",
        "declined": "Zahlung nicht akzeptiert",
        "declined_hint": "Bitte versuchen Sie eine andere Karte.",
        "refused": "Karte nicht akzeptiert",
        "tap_card": "Halten Sie Ihre Ladekarte an das Lesegerät.",
        "waiting": "Freigegeben. Ladevorgang startet...",
        "hints": "Es passiert nichts? Stecker ganz in die Ladedose schieben. Verbindung "
                 "Ihres Telefons prüfen (kostenloses WLAN). Vorgang beenden und neu "
                 "versuchen. Dann den Support anrufen: {phone}.",
        "energy": "Energie", "power": "Leistung", "soc": "Batterie",
        "cost": "Bisherige Kosten", "elapsed": "Dauer", "km": "Reichweite geladen",
        "total": "Gesamt inkl. MwSt.", "net": "Netto", "vat": "MwSt. {v} %",
        "stop": "Laden beenden", "confirm_stop": "Laden an Ladepunkt {n} beenden?",
        "confirm": "Ja, beenden", "back": "Zurück", "home_button": "Start",
        "receipt": "Beleg",
        "move": "Bitte fahren Sie Ihren Lkw weg, wenn Ihre Pause vorbei ist.",
        "fault": "Ladepunkt {n} ist außer Betrieb", "error_code": "Fehlercode {code}",
        "support": "Support: {phone}", "cost_unknown": "Kosten laut Rechnung",
        "stopped": "Laden beendet: {reason}",
    },
    "fr": {
        "home": "Choisissez votre point de charge", "connector": "Point de charge {n}",
        "available": "Libre", "connected": "Câble branché", "authorized": "Autorisé",
        "charging": "En charge", "finished": "Terminé", "reserved": "Réservé",
        "out_of_order": "Hors service", "tariff": "Prix au point de charge {n}",
        "per_kwh": "{p} par kWh", "per_session": "{p} par session",
        "per_minute": "{p} par minute de charge",
        "occupation": "{p} par minute au-delà de {m} min de stationnement après la charge",
        "incl_vat": "TVA {v} % incluse ({g} par kWh)",
        "emsp": "Carte de recharge : le prix de votre fournisseur",
        "pay_card": "Payer par carte", "rfid": "Carte de recharge",
        "app": "Démarrer dans l'application",
        "app_hint": "Dans l'application, choisissez la borne {id}, point de charge {n}.",
        "connect_first": "Branchez d'abord le câble, puis choisissez le point de charge "
                         "indiquant « Câble branché ».",
        "paying": "Suivez les instructions du terminal de paiement.",
        "reserve": "{p} seront réservés sur votre carte ; vous ne payez que ce que vous "
                   "chargez.",
        "declined": "Paiement refusé", "declined_hint": "Veuillez essayer une autre carte.",
        "refused": "Carte refusée",
        "tap_card": "Présentez votre carte de recharge au lecteur.",
        "waiting": "Autorisé. Démarrage de la charge...",
        "hints": "Rien ne se passe ? Enfoncez bien le connecteur. Vérifiez la connexion de "
                 "votre téléphone (Wi-Fi gratuit du site). Terminez la session et "
                 "réessayez. Puis appelez l'assistance : {phone}.",
        "energy": "Énergie", "power": "Puissance", "soc": "Batterie",
        "cost": "Coût actuel", "elapsed": "Durée", "km": "Autonomie ajoutée",
        "total": "Total TTC", "net": "HT", "vat": "TVA {v} %", "stop": "Arrêter la charge",
        "confirm_stop": "Arrêter la charge au point {n} ?", "confirm": "Oui, arrêter",
        "back": "Retour", "home_button": "Accueil", "receipt": "Reçu",
        "move": "Merci de déplacer votre camion à la fin de votre pause.",
        "fault": "Le point de charge {n} est hors service", "error_code": "Code d'erreur {code}",
        "support": "Assistance : {phone}", "cost_unknown": "Coût indiqué sur votre facture",
        "stopped": "Charge terminée : {reason}",
    },
    "nl": {
        "home": "Kies uw laadpunt", "connector": "Laadpunt {n}", "available": "Vrij",
        "connected": "Kabel aangesloten", "authorized": "Geautoriseerd",
        "charging": "Laden", "finished": "Klaar", "reserved": "Gereserveerd",
        "out_of_order": "Buiten gebruik", "tariff": "Prijs bij laadpunt {n}",
        "per_kwh": "{p} per kWh", "per_session": "{p} per sessie",
        "per_minute": "{p} per minuut laden",
        "occupation": "{p} per minuut bij meer dan {m} min parkeren na het laden",
        "incl_vat": "incl. {v} % btw ({g} per kWh)",
        "emsp": "Laadpas: de prijs van uw aanbieder", "pay_card": "Betalen met pas",
        "rfid": "Laadpas", "app": "Starten in de app",
        "app_hint": "Kies in de app laadpaal {id}, laadpunt {n}.",
        "connect_first": "Sluit eerst de kabel aan en kies dan het laadpunt met "
                         "'Kabel aangesloten'.",
        "paying": "Volg de instructies op de betaalautomaat.",
        "reserve": "{p} wordt op uw pas gereserveerd; u betaalt alleen wat u laadt.",
        "declined": "Betaling niet geaccepteerd",
        "declined_hint": "Probeer een andere pas.", "refused": "Pas niet geaccepteerd",
        "tap_card": "Houd uw laadpas voor de lezer.",
        "waiting": "Geautoriseerd. Het laden start...",
        "hints": "Gebeurt er niets? Duw de stekker helemaal in de aansluiting. Controleer "
                 "de verbinding van uw telefoon (gratis wifi). Beëindig de sessie en "
                 "probeer opnieuw. Bel dan support: {phone}.",
        "energy": "Energie", "power": "Vermogen", "soc": "Batterij",
        "cost": "Kosten tot nu", "elapsed": "Tijd", "km": "Bereik erbij",
        "total": "Totaal incl. btw", "net": "Netto", "vat": "Btw {v} %",
        "stop": "Laden stoppen", "confirm_stop": "Laden bij laadpunt {n} stoppen?",
        "confirm": "Ja, stoppen", "back": "Terug", "home_button": "Start",
        "receipt": "Bon",
        "move": "Verplaats uw truck als uw pauze voorbij is.",
        "fault": "Laadpunt {n} is buiten gebruik", "error_code": "Foutcode {code}",
        "support": "Support: {phone}", "cost_unknown": "Kosten volgens uw factuur",
        "stopped": "Laden beëindigd: {reason}",
    },
}

# Why a session stopped, shortly (the long fault sentences are firmware/words.py's).
REASONS: dict[str, dict[str, str]] = {
    "en": {"Local": "stopped at the bay", "Remote": "stopped in the app",
           "EVDisconnected": "vehicle unplugged", "StoppedByEV": "battery full or truck "
           "stopped", "Fault": "a fault", "other": "session ended"},
    "de": {"Local": "an der Säule beendet", "Remote": "in der App beendet",
           "EVDisconnected": "Fahrzeug getrennt", "StoppedByEV": "Batterie voll oder vom "
           "Lkw beendet", "Fault": "eine Störung", "other": "Vorgang beendet"},
    "fr": {"Local": "arrêtée à la borne", "Remote": "arrêtée dans l'application",
           "EVDisconnected": "véhicule débranché", "StoppedByEV": "batterie pleine ou "
           "arrêt par le camion", "Fault": "un défaut", "other": "session terminée"},
    "nl": {"Local": "gestopt bij de paal", "Remote": "gestopt in de app",
           "EVDisconnected": "voertuig losgekoppeld", "StoppedByEV": "batterij vol of door "
           "de truck gestopt", "Fault": "een storing", "other": "sessie beëindigd"},
}


def _reason(reason: StopReason | None, lang: str) -> str:
    table = REASONS[lang]
    return table.get(str(reason), table["other"]) if reason is not None else table["other"]


def render(view: View, tariffs: Tariffs, preauth: Decimal, station_id: str = "",
           ) -> dict[str, Any]:
    """The page's content: title, lines, figures, buttons (``id`` is what a tap sends)."""
    lang = view.language
    t = T[lang]
    cur = tariffs.currency
    out: dict[str, Any] = {"page": str(view.page), "lang": lang, "locked": view.locked,
                           "title": "", "lines": [], "figures": [], "buttons": [],
                           "bays": [], "message": view.message, "evse": view.evse_id}
    lines: list[str] = out["lines"]
    figures: list[list[str]] = out["figures"]
    buttons: list[dict[str, Any]] = out["buttons"]

    def button(ident: str, label: str, evse: int | None = None, primary: bool = False
               ) -> None:
        buttons.append({"id": ident, "label": label, "evse": evse, "primary": primary})

    bay = view.bay
    n = view.evse_id
    phone = view.support_phone or "-"
    if view.page is Page.HOME:
        out["title"] = t["home"]
        for b in view.bays:
            out["bays"].append({"evse": b.evse_id, "state": str(b.state),
                                "label": t["connector"].format(n=b.evse_id),
                                "status": t[str(b.state)]})
            button("select", f"{t['connector'].format(n=b.evse_id)}: {t[str(b.state)]}",
                   b.evse_id, primary=b.state is BayState.CONNECTED)
    elif view.page is Page.TARIFF:
        card = tariffs.for_source("payment")
        out["title"] = t["tariff"].format(n=n)
        lines.append(t["per_kwh"].format(p=money(card.per_kwh, cur, lang, 3)))
        if card.per_session:
            lines.append(t["per_session"].format(p=money(card.per_session, cur, lang)))
        if card.per_minute:
            lines.append(t["per_minute"].format(p=money(card.per_minute, cur, lang)))
        if card.occupation_per_minute:
            lines.append(t["occupation"].format(p=money(card.occupation_per_minute, cur,
                                                        lang),
                                                m=card.occupation_grace_s // 60))
        lines.append(t["incl_vat"].format(v=number(card.vat_rate * 100, 0, lang),
                                          g=money(gross(card, card.per_kwh), cur, lang, 3)))
        lines.append(t["reserve"].format(p=money(preauth, cur, lang)))
        lines.append(t["emsp"])
        lines.append(t["app_hint"].format(id=station_id, n=n))
        button("pay_card", t["pay_card"], n, primary=True)
        button("rfid", t["rfid"], n)
        button("back", t["back"], n)
    elif view.page is Page.CONNECT_FIRST:
        out["title"] = t["connector"].format(n=n)
        lines.append(t["connect_first"])
        button("home", t["back"])
    elif view.page is Page.PAYING:
        out["title"] = t["pay_card"]
        lines.append(t["paying"])
        lines.append(t["reserve"].format(p=money(preauth, cur, lang)))
        button("back", t["back"], n)
    elif view.page is Page.DECLINED:
        refused_card = view.reason not in ("declined", "timeout", "terminal_lost",
                                           "unplugged", "aborted")
        out["title"] = t["refused"] if refused_card else t["declined"]
        if view.reason:
            lines.append(f"({view.reason})")
        lines.append(t["declined_hint"])
        button("pay_card", t["pay_card"], n, primary=True)
        button("rfid", t["rfid"], n)
        button("home", t["home_button"])
    elif view.page is Page.TAP_CARD:
        out["title"] = t["rfid"]
        lines.append(t["tap_card"])
        button("back", t["back"], n)
    elif view.page is Page.WAITING:
        out["title"] = t["connector"].format(n=n)
        lines.append(t["waiting"])
        if view.hints:
            lines.append(t["hints"].format(phone=phone))
        button("stop", t["stop"], n)
        button("home", t["home_button"])
    elif view.page in (Page.CHARGING, Page.CONFIRM_STOP) and bay is not None:
        out["title"] = (t["confirm_stop"].format(n=n) if view.page is Page.CONFIRM_STOP
                        else f"{t['connector'].format(n=n)}: {t['charging']}")
        figures.extend(_figures(bay, view, cur, lang))
        if bay.personal_message:  # the CSMS's tariff or personal text for this driver
            lines.append(bay.personal_message)
        if view.page is Page.CONFIRM_STOP:
            button("confirm", t["confirm"], n, primary=True)
            button("back", t["back"], n)
        else:
            button("stop", t["stop"], n, primary=True)
            button("home", t["home_button"])
    elif view.page is Page.FINISHED and bay is not None:
        out["title"] = f"{t['connector'].format(n=n)}: {t['finished']}"
        lines.append(t["stopped"].format(reason=_reason(bay.stop_reason, lang)))
        figures.append([t["energy"], f"{number(bay.energy_wh / 1000, 1, lang)} kWh"])
        if bay.cost is not None:
            c = bay.cost
            out["receipt"] = [[t["net"], money(c.net, cur, lang)],
                              [t["vat"].format(v=number(c.vat_rate * 100, 0, lang)),
                               money(c.vat, cur, lang)],
                              [t["total"], money(c.total, cur, lang)]]
            if bay.csms_total is not None:  # the CSMS's figure, beside the local receipt
                figures.append([t["total"], money(bay.csms_total, cur, lang)])
        lines.append(t["move"])
        button("home", t["home_button"], primary=True)
    elif view.page is Page.FAULT:
        out["title"] = t["fault"].format(n=n)
        if bay is not None and bay.fault is not None:
            lines.append(t["error_code"].format(code=error_code(bay.fault)))
        lines.append(t["support"].format(phone=phone))
        button("home", t["home_button"], primary=True)
    out["footer"] = t["support"].format(phone=phone)
    out["languages"] = list(T)
    return out


def error_code(code: ErrorCode) -> str:
    """The code the driver reads to support: the catalogue's name in capitals."""
    return code.name


def _figures(bay: Bay, view: View, cur: Currency, lang: str) -> list[list[str]]:
    t = T[lang]
    rows = [[t["energy"], f"{number(bay.energy_wh / 1000, 1, lang)} kWh"],
            [t["power"], f"{number(bay.power_w / 1000, 0, lang)} kW"]]
    if bay.soc_percent is not None:
        rows.append([t["soc"], f"{number(bay.soc_percent, 0, lang)} %"])
    if bay.csms_total is not None:
        rows.append([t["cost"], money(bay.csms_total, cur, lang)])
    elif bay.cost is not None:
        rows.append([t["cost"], money(bay.cost.total, cur, lang)])
    else:
        rows.append([t["cost"], bay.personal_message or t["cost_unknown"]])
    rows.append([t["elapsed"], duration(bay.elapsed_s)])
    rows.append([t["km"], f"{number(km_added(bay, view.kwh_per_km), 0, lang)} km"])
    return rows
