"""The loopback PostgreSQL fixture really serves SQL (the grader's --db tests rely on it)."""

import sqlalchemy


def test_postgres_server_answers_sql(postgres_server):
    url = postgres_server.create_database("fixture_check")
    engine = sqlalchemy.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sqlalchemy.text("create table t (x int)"))
        connection.execute(sqlalchemy.text("insert into t values (41), (1)"))
        assert connection.execute(sqlalchemy.text("select sum(x) from t")).scalar() == 42
    engine.dispose()
