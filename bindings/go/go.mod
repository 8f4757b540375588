module harvbk.dev/go/harvbk

go 1.19
