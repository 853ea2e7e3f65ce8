module wiretrail.example/lab

go 1.19
