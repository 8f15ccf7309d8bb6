#!lua name=zrq
