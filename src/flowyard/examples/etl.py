"""Flowyard's quick-start: a three-step ETL flow.

Run it locally with ``python examples/etl.py``; deploy it with the entrypoint
``examples/etl.py:etl_flow``.
"""

from flowyard import flow, get_run_logger, task


@task
def extract_data() -> list[int]:
    return [1, 2, 3, 4, 5]


@task
def transform_data(data: list[int]) -> list[int]:
    get_run_logger().info("Transforming %d records", len(data))
    return [value * 10 for value in data]


@task
def load_data(data: list[int]) -> None:
    print(f"Loading data: {data}")


@flow(name="ETL Pipeline")
def etl_flow() -> None:
    logger = get_run_logger()
    logger.info("Starting the ETL pipeline")
    data = extract_data()
    load_data(transform_data(data))
    logger.info("ETL pipeline finished")


if __name__ == "__main__":
    etl_flow()
