// placeholder: the demo's Socket.IO client is written in the next commit
