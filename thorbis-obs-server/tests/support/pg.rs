//! The throwaway PostgreSQL cluster that scripts/test.sh starts.

/// A fresh database on the test cluster.
pub async fn fresh_database(name: &str) -> String {
    let base = std::env::var("THORBIS_TEST_PG_URL").unwrap_or_else(|_| {
        panic!(
            "THORBIS_TEST_PG_URL is not set: run `bash scripts/test.sh`, which starts a throwaway PostgreSQL cluster \
             from the machine's PostgreSQL 15 binaries (Debian: apt-get install postgresql)"
        )
    });
    let (client, conn) =
        tokio_postgres::connect(&base, tokio_postgres::NoTls).await.expect("connects to the test cluster");
    tokio::spawn(conn);
    let db = format!("{name}_{}", std::process::id());
    client.batch_execute(&format!("DROP DATABASE IF EXISTS {db}")).await.expect("drop");
    client.batch_execute(&format!("CREATE DATABASE {db}")).await.expect("create");
    match base.rfind('/') {
        Some(i) => format!("{}/{db}", &base[..i]),
        None => panic!("unexpected URL {base}"),
    }
}
