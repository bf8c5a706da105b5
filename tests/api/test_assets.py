"""The asset register: import from the simulator's register and CSV, validated CRUD."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.api.helpers import import_county, small_county


def test_register_import_creates_every_asset_and_is_repeatable(
        client: TestClient, admin: dict[str, str]) -> None:
    county = small_county()
    first = client.post("/api/v1/assets/import/register", headers=admin,
                        json=county.model_dump(mode="json")).json()["counts"]
    again = client.post("/api/v1/assets/import/register", headers=admin,
                        json=county.model_dump(mode="json")).json()["counts"]
    assert first == again
    assert first["villages"] == 3 and first["households"] == len(county.households)
    branches = sum(len(d.branches) for d in county.dmas)
    assert first["pipelines"] == branches + len(county.dmas)  # one main line per DMA
    meters = client.get("/api/v1/assets/devices", headers=admin,
                        params={"village_id": "v001", "limit": 1000}).json()
    monitored = {h.meter for h in county.households if h.village == "v001" and h.monitored}
    assert {d["id"] for d in meters if d["monitored"]} == monitored
    assert all(len(d["address"]) == 14 for d in meters if d["kind"] == "meter")


def test_list_filters_by_parent(client: TestClient, admin: dict[str, str]) -> None:
    import_county(client, admin)
    wells = client.get("/api/v1/assets/wells", headers=admin,
                       params={"scheme_id": "v002"}).json()
    assert wells and all(w["scheme_id"] == "v002" for w in wells)


def test_unknown_reference_is_a_clear_422(client: TestClient, admin: dict[str, str]) -> None:
    response = client.post("/api/v1/assets/villages", headers=admin, json={
        "id": "v900", "name": "Nowhere", "township_id": "t99", "population": 10,
        "households": 4, "latitude": 39.0, "longitude": 112.0})
    assert response.status_code == 422
    assert response.json()["detail"] == "township_id: no township 't99'"


def test_duplicate_id_is_a_409(client: TestClient, admin: dict[str, str]) -> None:
    import_county(client, admin)
    response = client.post("/api/v1/assets/townships", headers=admin,
                           json={"id": "t01", "name": "Again"})
    assert response.status_code == 409


def test_update_keeps_the_row_valid(client: TestClient, admin: dict[str, str]) -> None:
    import_county(client, admin)
    too_many = client.patch("/api/v1/assets/villages/v001", headers=admin,
                            json={"monitored_households": 10_000})
    assert too_many.status_code == 422
    renamed = client.patch("/api/v1/assets/villages/v001", headers=admin,
                           json={"name": "Upper Well"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "Upper Well"


def test_a_referenced_asset_cannot_be_deleted(client: TestClient, admin: dict[str, str]) -> None:
    import_county(client, admin)
    refused = client.delete("/api/v1/assets/villages/v001", headers=admin)
    assert refused.status_code == 409
    assert "still referenced" in refused.json()["detail"]
    assert client.delete("/api/v1/assets/tanks/tank-v001", headers=admin).status_code == 204


def test_only_admins_and_dispatchers_write_assets(client: TestClient, admin: dict[str, str],
                                                  viewer: dict[str, str]) -> None:
    response = client.post("/api/v1/assets/townships", headers=viewer,
                           json={"id": "t77", "name": "T"})
    assert response.status_code == 403
    assert client.get("/api/v1/assets/townships", headers=viewer).status_code == 200


def test_csv_import_upserts_and_names_the_bad_line(client: TestClient,
                                                   admin: dict[str, str]) -> None:
    import_county(client, admin)
    good = "id,name,township_id,population,households,latitude,longitude\n" \
           "v101,East Hill,t01,420,130,39.1,112.5\nv001,Renamed,t01,500,150,39.0,112.4\n"
    result = client.post("/api/v1/assets/import/csv/villages", headers=admin,
                         files={"file": ("villages.csv", good, "text/csv")})
    assert result.status_code == 200, result.text
    assert result.json()["counts"] == {"rows": 2, "created": 1, "updated": 1}
    bad = "id,name,township_id,population,households,latitude,longitude\n" \
          "v102,Ok,t01,10,5,39.1,112.5\nv103,Bad,t01,-5,5,39.1,112.5\n"
    refused = client.post("/api/v1/assets/import/csv/villages", headers=admin,
                          files={"file": ("villages.csv", bad, "text/csv")})
    assert refused.status_code == 422 and "line 3" in refused.json()["detail"]
    assert client.get("/api/v1/assets/villages/v102", headers=admin).status_code == 404
