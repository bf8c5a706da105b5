"""The crew page tests share the scheduling tests' county, crews and tickets."""

from tests.api.scheduling.conftest import add_crew, county, open_ticket, planning_app

__all__ = ["add_crew", "county", "open_ticket", "planning_app"]
