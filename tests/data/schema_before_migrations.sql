CREATE TABLE conversation (
	id VARCHAR(200) NOT NULL, 
	channel VARCHAR(40) NOT NULL, 
	user_id VARCHAR(160) NOT NULL, 
	state VARCHAR NOT NULL, 
	version INTEGER NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_conversation_channel ON conversation (channel);
CREATE TABLE seen_message (
	"key" VARCHAR(400) NOT NULL, 
	at DATETIME NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE declaration_owner (
	receipt VARCHAR(64) NOT NULL, 
	conversation_id VARCHAR(200) NOT NULL, 
	kind VARCHAR(20) NOT NULL, 
	submitted_at DATETIME NOT NULL, 
	reminder_due DATETIME, 
	reminder_sent BOOLEAN NOT NULL, 
	reminders_stopped BOOLEAN NOT NULL, 
	PRIMARY KEY (receipt)
);
CREATE INDEX ix_declaration_owner_conversation_id ON declaration_owner (conversation_id);
CREATE TABLE notice (
	id INTEGER NOT NULL, 
	"key" VARCHAR(200) NOT NULL, 
	conversation_id VARCHAR(200) NOT NULL, 
	payload VARCHAR NOT NULL, 
	created_at DATETIME NOT NULL, 
	sent_at DATETIME, 
	attempts INTEGER NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE ("key")
);
CREATE INDEX ix_notice_conversation_id ON notice (conversation_id);
CREATE INDEX ix_notice_sent_at ON notice (sent_at);
CREATE TABLE key_value (
	"key" VARCHAR(100) NOT NULL, 
	value VARCHAR NOT NULL, 
	PRIMARY KEY ("key")
);
