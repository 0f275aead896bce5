SELECT abalance FROM pgbench_accounts WHERE aid = {rand 1 100000};
