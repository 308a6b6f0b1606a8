"""The client portal: an owner opens the link of an e-mail or SMS (no account: the signed
link is the key, kiosk/messaging/links.py), reads the clinic's messages about their pet and
fills the forms they were sent."""
