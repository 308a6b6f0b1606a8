"""Embedded defaults: one machine, no set-up, SQLite in the instance folder."""

# A real key is generated into the instance folder on first start (see kiosk.configure_secret).
SECRET_KEY = None

# None means "SQLite file in the instance folder"; set KIOSK_DATABASE_URL for PostgreSQL.
SQLALCHEMY_DATABASE_URI = None
SQLALCHEMY_TRACK_MODIFICATIONS = False

# The clinic's time zone for a new clinic; the clinic setting wins once it exists.
KIOSK_TIMEZONE = "UTC"
# The country code ("44") that a national phone number (07700 900123) is dialled in: owners'
# numbers are kept in international form (+447700900123). None: national numbers are refused.
KIOSK_PHONE_COUNTRY_CODE = None

# Redis joins several server processes for live updates; None runs on one process.
KIOSK_REDIS_URL = None

# Whole request bodies above this are refused (PIMS uploads, sync batches).
MAX_CONTENT_LENGTH = 4 * 1024 * 1024
# An imported PIMS file may not be larger than this.
KIOSK_IMPORT_MAX_BYTES = 1024 * 1024

SESSION_COOKIE_HTTPONLY = True
# Strict-Transport-Security on every response; on in production (HTTPS), off without it.
KIOSK_HSTS = False
SESSION_COOKIE_SAMESITE = "Lax"
# Wall displays never time out; shared tablets lock by idle time, not by cookie age.
PERMANENT_SESSION_LIFETIME = 60 * 60 * 24 * 30
# The cookie goes out when the session changed, and once a day (core.auth.session_keep_alive).
SESSION_REFRESH_EACH_REQUEST = False
KIOSK_SESSION_REFRESH_SECONDS = 60 * 60 * 24

WTF_CSRF_TIME_LIMIT = None

# How passwords and PINs are hashed (werkzeug method string).
KIOSK_PASSWORD_HASH = "scrypt"  # noqa: S105 (a method name, not a secret)
# PBKDF2 rounds of the PIN verifier tablets keep to unlock offline (docs/security.md).
# Measured in Chromium: 150,000 rounds take ~0.1 s in the pure-JavaScript path (plain-HTTP
# pages) on a laptop core, ~0.3-0.5 s on a mid-range tablet; a PIN set before keeps the
# rounds it was made with until it is reset.
KIOSK_PIN_VERIFIER_ITERATIONS = 150_000
# Sign-in and pairing posts allowed per client address (Flask-Limiter syntax), on top of
# each user's own lockout; kept in Redis when KIOSK_REDIS_URL is set.
KIOSK_SIGN_IN_LIMIT = "30 per minute"
# The Redis pub/sub channel; clinics sharing one Redis server need different ones.
KIOSK_REDIS_CHANNEL = "kiosk"
# How many reverse proxies (nginx …) sit in front; their X-Forwarded-* headers are trusted.
KIOSK_PROXIES = 0
# Where e-mail goes out (documents, messages to clients); no host: e-mail says it is not set.
KIOSK_SMTP_HOST = None
KIOSK_SMTP_PORT = 25
KIOSK_SMTP_FROM = None
KIOSK_SMTP_USER = None
KIOSK_SMTP_PASSWORD = None
KIOSK_SMTP_STARTTLS = False
# A private CA bundle (PEM) to trust for STARTTLS instead of the system's, e.g. a clinic's
# internal relay with its own certificate authority.
KIOSK_SMTP_CA_FILE = None
# Seconds the SMTP server has for each step (connecting, each reply).
KIOSK_SMTP_TIMEOUT = 20
# Text messages and voice calls to clients, through a Twilio-compatible REST API
# (KIOSK_SMS_URL e.g. https://api.twilio.com); no URL: SMS and voice say they are not set.
# The token is read from the environment only and never logged.
KIOSK_SMS_URL = None
KIOSK_SMS_ACCOUNT = None
KIOSK_SMS_TOKEN = None
KIOSK_SMS_FROM = None
# Seconds the provider has to answer before the message is tried again later.
KIOSK_SMS_TIMEOUT = 10
# The number calls come from (default: KIOSK_SMS_FROM) and the language calls are read in.
KIOSK_VOICE_FROM = None
KIOSK_VOICE_LANGUAGE = "en-GB"
# Messages to clients sent at once by one sender (threads waiting on the provider and the
# SMTP server), and how long a sender's claim on a batch holds before another takes it.
KIOSK_MESSAGE_SENDERS = 16
KIOSK_MESSAGE_LEASE_S = 180
# Who runs the job queue (PDFs, deliveries, sweeps, upkeep): threads inside each server
# process ("in-process"), or `kiosk worker` processes of their own ("separate").
KIOSK_WORKER = "in-process"
# The queue's name on Redis (default: KIOSK_REDIS_CHANNEL + "_jobs"); clinics sharing one
# Redis server need different ones, the processes of one clinic the same one.
KIOSK_JOBS_NAME = None
# The queue's SQLite file without Redis; None: beside an SQLite database (kiosk.db →
# kiosk-jobs.db), else jobs.db in the instance folder.
KIOSK_JOBS_FILE = None
# Deprecated: 0 meant KIOSK_WORKER=separate, and still does.
KIOSK_DOCUMENTS_WORKER = None
# Threads of a server process (`kiosk run`): live connections plus requests at once. The
# database pool follows it (PostgreSQL's capped at KIOSK_DB_POOL_MAX per process).
KIOSK_THREADS = 100
KIOSK_DB_POOL_MAX = 20
# A tablet counts as "all sent" on the sync dashboard only while its last report of an empty
# outbox is at most this old (tablets report every minute while a page is open).
KIOSK_SYNC_CONFIRM_SECONDS = 120
# Billing: an action through a tablet that reaches the server this many seconds after it was
# performed was captured offline (flagged on the billing report and PDF).
KIOSK_BILLING_OFFLINE_AFTER_S = 60
# Work a tablet performed this many seconds or more before it reached the server means the
# server was out of reach for it: an outage is recorded (or one that overlaps extended).
KIOSK_OUTAGE_DETECT_AFTER_S = 300
# Seconds the practice system's webhook has to answer before the charge is tried again later.
KIOSK_BILLING_WEBHOOK_TIMEOUT = 10
# The address clients reach the server at (https://vets.example.org), for the client
# portal's links in e-mails and SMS; None: the address of the request being served.
KIOSK_PUBLIC_URL = None
# Client portal requests allowed per client address (Flask-Limiter syntax).
KIOSK_PORTAL_LIMIT = "60 per minute"
# Maintenance windows: a window is under way this many seconds before its start (direct
# patient creation allowed, the connector paused, tablets fetch their kept pages again while
# the server still answers); every screen shows the banner this many hours before; pages ask
# for the banner again this often (a live poke asks sooner).
KIOSK_MAINTENANCE_PREPARE_S = 300
KIOSK_MAINTENANCE_NOTICE_H = 48
KIOSK_MAINTENANCE_POLL_S = 60
