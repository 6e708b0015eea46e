"""The bay: what a driver sees and does at the charger (tariff and cost, the screen,
the payment terminal's flow, the card reader). docs/bay.md."""
