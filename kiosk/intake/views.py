"""PIMS import pages."""

from flask import Blueprint

bp = Blueprint("intake", __name__, url_prefix="/intake")
