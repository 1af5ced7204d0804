%%% The cluster server's database: mnesia tables replicated as disc_copies
%%% on every node, the schema version and its migrations, and the
%%% transactions the channels run.
%%%
%%% Tables (schema version 2):
%%%   game_meta  {key, value}             {schema_version, 2}
%%%   account    {uuid, keys}             keys: [{KeyLine, Label}] in the order added
%%%   key_owner  {key, uuid}              KeyLine -> the account holding it
%%%   name       {uuid, name}             the last name set
%%%   score      {id, value, stream, seq} id = {Uuid, Time}; stream/seq undefined for protocol 1
%%%   stream     {id, last_seq, rejected, used}   id = {Uuid, Stream}; rejected: #{Seq => Reason}
%%% KeyLine is "ssh-ed25519 AAAA..." (type and base64, no comment).
%%%
%%% Version 1 (the first cluster schema) had account {uuid, key} (one key
%%% a player), score {id, value} and no key_owner or stream tables.
%%%
%%% Durability: every write is a mnesia:sync_transaction (committed on all
%%% running replicas) followed by mnesia:sync_log() (the local log is on
%%% disk), and only then is anything reported to a client. Channels batch:
%%% everything already received is one transaction.
-module(game_db).

-export([start/1, create_v1/2]).
-export([lookup_keys/1, register/2]).
-export([apply_v1/2, opened/2, apply_v2/4]).
-export([dump/1]).

-define(VERSION, 2).
-define(TABLES, [game_meta, account, key_owner, name, score, stream]).
-define(LOAD_TIMEOUT_MS, 60000).
-define(REGISTERED_LABEL, <<"registered">>).

-record(game_meta, {key, value}).
-record(account, {uuid, keys = []}).
-record(key_owner, {key, uuid}).
-record(name, {uuid, name}).
-record(score, {id, value, stream, seq}).
-record(stream, {id, last_seq = 0, rejected = #{}, used = 0}).

%%====================================================================
%% Start, join, migrate
%%====================================================================

%% Opts: dir (this node's mnesia directory), nodes (all nodes of the
%% cluster), create (true only for the first start of the first node).
start(#{dir := Dir, nodes := Nodes, create := Create}) ->
    ok = application:set_env(mnesia, dir, Dir),
    Others = Nodes -- [node()],
    HasSchema = filelib:is_regular(filename:join(Dir, "schema.DAT")),
    case {HasSchema, Create} of
        {true, _} -> restart(Others);
        {false, true} -> create(?VERSION);
        {false, false} -> join(Others)
    end,
    migrate(),
    ok.

%% A fresh database of schema Version on this node alone; other nodes join it.
create(Version) ->
    ok = mnesia:create_schema([node()]),
    ok = mnesia:start(),
    [{atomic, ok} = mnesia:create_table(T, [{disc_copies, [node()]} | Def])
     || {T, Def} <- tables(Version)],
    {atomic, ok} = mnesia:sync_transaction(
                     fun() -> mnesia:write(#game_meta{key = schema_version, value = Version}) end),
    ok.

tables(2) ->
    [{game_meta, [{attributes, record_info(fields, game_meta)}]},
     {account, [{attributes, record_info(fields, account)}]},
     {key_owner, [{attributes, record_info(fields, key_owner)}]},
     {name, [{attributes, record_info(fields, name)}]},
     {score, [{attributes, record_info(fields, score)}]},
     {stream, [{attributes, record_info(fields, stream)}]}];
tables(1) ->
    [{game_meta, [{attributes, [key, value]}]},
     {account, [{attributes, [uuid, key]}]},
     {name, [{attributes, [uuid, name]}]},
     {score, [{attributes, [id, value]}]}].

%% A node that has its schema on disk: mnesia loads the tables from the
%% running replicas (or from disk if it was the last one down).
restart(Others) ->
    ok = mnesia:start(),
    {ok, _} = mnesia:change_config(extra_db_nodes, Others),
    wait_for_tables().

%% A new node: fetch the schema from the running nodes, make it disc
%% based here and add a disc copy of every table.
join(Others) ->
    ok = mnesia:start(),
    case mnesia:change_config(extra_db_nodes, Others) of
        {ok, [_ | _]} -> ok;
        Other -> error({no_running_node_to_join, Others, Other})
    end,
    case mnesia:change_table_copy_type(schema, node(), disc_copies) of
        {atomic, ok} -> ok;
        {aborted, {already_exists, schema, _, disc_copies}} -> ok
    end,
    wait_for_tables(),
    lists:foreach(
      fun(T) ->
              case mnesia:add_table_copy(T, node(), disc_copies) of
                  {atomic, ok} -> ok;
                  {aborted, {already_exists, T, _}} -> ok
              end
      end, mnesia:system_info(tables) -- [schema]),
    wait_for_tables().

wait_for_tables() ->
    Tables = mnesia:system_info(tables) -- [schema],
    case mnesia:wait_for_tables(Tables, ?LOAD_TIMEOUT_MS) of
        ok -> ok;
        Other -> error({tables_not_loaded, Other})
    end.

%% Brings the schema up to ?VERSION; one node at a time (global lock), so
%% nodes starting together migrate once.
migrate() ->
    global:trans({game_db_migrate, self()}, fun() -> migrate(version()) end).

version() ->
    [#game_meta{value = V}] = mnesia:dirty_read(game_meta, schema_version),
    V.

migrate(?VERSION) ->
    ok;
migrate(1) ->
    game_server:info("migrating the database from schema version 1 to 2", []),
    %% New tables first: a crash in between leaves version 1 with extra
    %% empty tables, and the next start migrates again.
    Nodes = mnesia:table_info(account, disc_copies),
    [ok = create_if_missing(T, [{disc_copies, Nodes} | Def])
     || {T, Def} <- tables(2), T =:= key_owner orelse T =:= stream],
    {atomic, ok} = mnesia:transform_table(
                     account, fun({account, U, Key}) when is_binary(Key) ->
                                      #account{uuid = U, keys = [{Key, ?REGISTERED_LABEL}]};
                                 (#account{} = A) ->
                                      A
                              end, record_info(fields, account)),
    {atomic, ok} = mnesia:transform_table(
                     score, fun({score, Id, V}) -> #score{id = Id, value = V};
                               (#score{} = S) -> S
                            end, record_info(fields, score)),
    {atomic, ok} = mnesia:sync_transaction(
                     fun() ->
                             [mnesia:write(#key_owner{key = K, uuid = U})
                              || #account{uuid = U, keys = Ks} <- mnesia:match_object(#account{_ = '_'}),
                                 {K, _} <- Ks],
                             mnesia:write(#game_meta{key = schema_version, value = 2})
                     end),
    mnesia:sync_log(),
    migrate(2).

create_if_missing(T, Def) ->
    case mnesia:create_table(T, Def) of
        {atomic, ok} -> ok;
        {aborted, {already_exists, T}} -> ok
    end.

%% A version-1 database with the given contents (for the migration test):
%% Data = [{account, Uuid, KeyLine} | {name, Uuid, Name} | {score, Uuid, Time, Value}].
create_v1(Dir, Data) ->
    ok = application:set_env(mnesia, dir, Dir),
    ok = create(1),
    {atomic, ok} = mnesia:sync_transaction(
                     fun() -> lists:foreach(fun write_v1/1, Data) end),
    mnesia:sync_log(),
    stopped = mnesia:stop(),
    ok.

write_v1({account, U, K}) -> mnesia:write({account, U, K});
write_v1({name, U, N}) -> mnesia:write({name, U, N});
write_v1({score, U, T, V}) -> mnesia:write({score, {U, T}, V}).

%%====================================================================
%% Accounts
%%====================================================================

%% [KeyLine] of a user ([] if unknown); the local replica is current for
%% everything committed.
lookup_keys(User) ->
    case mnesia:dirty_read(account, User) of
        [#account{keys = Ks}] -> [K || {K, _} <- Ks];
        [] -> []
    end.

%% Registers a new user with the key that authenticated. ok if the key is
%% (now) one of the user's keys, denied otherwise (another connection
%% registered another key first).
register(User, KeyLine) ->
    commit(fun() ->
                   case mnesia:read(account, User, write) of
                       [#account{keys = Ks}] ->
                           case lists:keymember(KeyLine, 1, Ks) of
                               true -> {ok, existing};
                               false -> denied
                           end;
                       [] ->
                           mnesia:write(#account{uuid = User, keys = [{KeyLine, ?REGISTERED_LABEL}]}),
                           case mnesia:read(key_owner, KeyLine, write) of
                               [] -> mnesia:write(#key_owner{key = KeyLine, uuid = User});
                               _ -> ok               % protocol 1 lets two accounts share a key
                           end,
                           {ok, new}
                   end
           end).

%%====================================================================
%% Requests
%%====================================================================

%% Protocol 1: Outcomes = [game_proto:outcome()]; accepted ones are stored.
apply_v1(_User, []) ->
    ok;
apply_v1(User, Outcomes) ->
    ok = commit(fun() ->
                        lock_tables([name, score]),
                        lists:foreach(fun(O) -> store(User, O, undefined, undefined) end, Outcomes)
                end).

%% Protocol 2 open: the stream's handled lastSeq (0 for a new stream).
opened(User, Stream) ->
    case mnesia:dirty_read(stream, {User, Stream}) of
        [#stream{last_seq = S}] -> S;
        [] -> 0
    end.

%% Protocol 2: Ops = [{Seq, {submit, Request} | {account, AccountRequest}}]
%% with Seq increasing. Returns [{Seq, Outcome}] in the same order once
%% the transaction committed. Outcome: accepted | duplicate |
%% {rejected, Reason} | {keys, [{Blob, Label, Current}]}.
apply_v2(User, KeyLine, Stream, Ops) ->
    commit(fun() ->
                   lock_tables([name, score, stream, account, key_owner]),
                   Id = {User, Stream},
                   S0 = case mnesia:read(stream, Id) of
                            [S] -> S;
                            [] -> #stream{id = Id}
                        end,
                   {Results, S1} = lists:mapfoldl(
                                     fun(Op, S) -> op(User, KeyLine, Op, S) end, S0, Ops),
                   mnesia:write(S1#stream{used = erlang:system_time(second)}),
                   Results
           end).

op(User, KeyLine, {Seq, {account, {listKeys, _}}}, S) ->
    {{Seq, keys(User, KeyLine)}, S#stream{last_seq = max(Seq, S#stream.last_seq)}};
op(_User, _KeyLine, {Seq, _}, #stream{last_seq = Last, rejected = Rej} = S) when Seq =< Last ->
    case Rej of
        #{Seq := Reason} -> {{Seq, {rejected, Reason}}, S};
        _ -> {{Seq, duplicate}, S}
    end;
op(User, KeyLine, {Seq, Req}, #stream{rejected = Rej} = S) ->
    case request(User, KeyLine, Seq, S#stream.id, Req) of
        accepted -> {{Seq, accepted}, S#stream{last_seq = Seq}};
        {rejected, Reason} ->
            {{Seq, {rejected, Reason}}, S#stream{last_seq = Seq, rejected = Rej#{Seq => Reason}}}
    end.

request(User, _KeyLine, Seq, {_, Stream}, {submit, Req}) ->
    case game_proto:classify(Req) of
        {rejected, _} = R -> R;
        Outcome -> store(User, Outcome, Stream, Seq), accepted
    end;
request(User, _KeyLine, _Seq, _Id, {account, {addKey, #{key := Blob, label := Label}}}) ->
    add_key(User, Blob, Label);
request(User, _KeyLine, _Seq, _Id, {account, {removeKey, #{key := Blob}}}) ->
    remove_key(User, Blob).

store(User, {set_username, Name}, _Stream, _Seq) ->
    mnesia:write(#name{uuid = User, name = Name});
store(User, {add_score, V}, Stream, Seq) ->
    mnesia:write(#score{id = {User, free_time(User, now_us())}, value = V, stream = Stream, seq = Seq});
store(_User, _RejectedOrMalformed, _Stream, _Seq) ->
    ok.

%% Scores are keyed by {Uuid, Time}: the first free microsecond from now
%% (the score table is locked, so no other node takes it meanwhile).
free_time(User, T) ->
    case mnesia:read(score, {User, T}) of
        [] -> T;
        _ -> free_time(User, T + 1)
    end.

now_us() ->
    erlang:system_time(microsecond).

add_key(User, Blob, Label) ->
    case {key_line(Blob), valid_label(Label)} of
        {error, _} -> {rejected, <<"not a valid SSH public key">>};
        {_, false} -> {rejected, <<"label must be 1 to 64 characters">>};
        {Line, true} ->
            [#account{keys = Ks} = A] = mnesia:read(account, User),
            case mnesia:read(key_owner, Line) of
                [#key_owner{uuid = Other}] when Other =/= User ->
                    {rejected, <<"key belongs to another account">>};
                _ ->
                    Keys = case lists:keymember(Line, 1, Ks) of
                               true -> lists:keyreplace(Line, 1, Ks, {Line, Label});
                               false -> Ks ++ [{Line, Label}]
                           end,
                    mnesia:write(A#account{keys = Keys}),
                    mnesia:write(#key_owner{key = Line, uuid = User}),
                    accepted
            end
    end.

remove_key(User, Blob) ->
    [#account{keys = Ks} = A] = mnesia:read(account, User),
    Line = key_line(Blob),
    case lists:keymember(Line, 1, Ks) of
        false -> {rejected, <<"no such key">>};
        true when length(Ks) =:= 1 -> {rejected, <<"cannot remove the last key">>};
        true ->
            mnesia:write(A#account{keys = lists:keydelete(Line, 1, Ks)}),
            case mnesia:read(key_owner, Line) of
                [#key_owner{uuid = User}] -> mnesia:delete({key_owner, Line});
                _ -> ok
            end,
            accepted
    end.

keys(User, Current) ->
    [#account{keys = Ks}] = mnesia:read(account, User),
    {keys, [{key_blob(Line), Label, Line =:= Current} || {Line, Label} <- Ks]}.

valid_label(Label) ->
    case unicode:characters_to_list(Label, utf8) of
        L when is_list(L), length(L) >= 1, length(L) =< 64 -> true;
        _ -> false
    end.

%% RFC 4253 key blob <-> "type base64"; error for a blob OTP cannot parse.
key_line(Blob) ->
    try ssh_file:decode(Blob, ssh2_pubkey) of
        {error, _} -> error;
        Key -> game_users:canonical_key(Key)
    catch
        _:_ -> error
    end.

key_blob(Line) ->
    [_Type, B64] = binary:split(Line, <<" ">>),
    base64:decode(B64).

lock_tables(Tables) ->
    [mnesia:lock({table, T}, write) || T <- Tables],
    ok.

%% Runs Fun as one transaction, committed on all running replicas and in
%% the local log on disk before this returns.
commit(Fun) ->
    case mnesia:sync_transaction(Fun) of
        {atomic, Result} ->
            mnesia:sync_log(),
            Result;
        {aborted, Reason} ->
            error({transaction_aborted, Reason})
    end.

%%====================================================================
%% Dump: JSON lines (see tests/integration/harness.py, Cluster)
%%====================================================================

%% Writes the database, as read in one transaction on this node, to File.
dump(File) ->
    {atomic, Lines} =
        mnesia:transaction(
          fun() ->
                  [json(O) || O <- [obj([{table, <<"schema">>}, {version, version()}])]
                      ++ [obj([{table, <<"account">>}, {uuid, U},
                               {keys, [obj([{key, K}, {label, L}]) || {K, L} <- Ks]}])
                          || #account{uuid = U, keys = Ks} <- all(account)]
                      ++ [obj([{table, <<"name">>}, {uuid, U}, {name, N}])
                          || #name{uuid = U, name = N} <- all(name)]
                      ++ [obj([{table, <<"score">>}, {uuid, U}, {value, V}, {time, T},
                               {stream, hex_or_null(St)}, {seq, null_if_undefined(Seq)}])
                          || #score{id = {U, T}, value = V, stream = St, seq = Seq}
                                 <- lists:keysort(#score.id, all(score))]
                      ++ [obj([{table, <<"stream">>}, {uuid, U}, {stream, game_proto:hex(St)},
                               {last_seq, L},
                               {rejected, obj([{integer_to_binary(K), R}
                                               || {K, R} <- lists:sort(maps:to_list(Rej))])}])
                          || #stream{id = {U, St}, last_seq = L, rejected = Rej} <- all(stream)]]
          end),
    ok = file:write_file(File, [[L, $\n] || L <- Lines]).

all(T) ->
    mnesia:match_object(T, mnesia:table_info(T, wild_pattern), read).

hex_or_null(undefined) -> null;
hex_or_null(B) -> game_proto:hex(B).

null_if_undefined(undefined) -> null;
null_if_undefined(V) -> V.

json(null) -> <<"null">>;
json(true) -> <<"true">>;
json(false) -> <<"false">>;
json(I) when is_integer(I) -> integer_to_binary(I);
json(B) when is_binary(B) -> [$", escape(B), $"];
json(A) when is_atom(A) -> json(atom_to_binary(A));
json({obj, Iodata}) -> Iodata;
json(L) when is_list(L) -> [$[, lists:join($,, [json(E) || E <- L]), $]].

%% A JSON object with its members in the given order; names are atoms or
%% binaries that need no escaping.
obj(Members) ->
    {obj, [${, lists:join($,, [[$", name(K), $", $:, json(V)] || {K, V} <- Members]), $}]}.

name(A) when is_atom(A) -> atom_to_binary(A);
name(B) -> B.

%% Pure ASCII out (stdout is a latin1 io device): names are valid UTF-8
%% (validated before they are stored); everything not ASCII becomes \uXXXX
%% (UTF-16, with surrogate pairs).
escape(B) ->
    case plain(B) of
        true -> B;
        false -> escape_chars(B)
    end.

%% Printable ASCII without quote or backslash: nothing to escape (uuids, keys, hex).
plain(<<C, Rest/binary>>) when C >= 16#20, C =< 16#7e, C =/= $", C =/= $\\ -> plain(Rest);
plain(<<>>) -> true;
plain(_) -> false.

escape_chars(B) ->
    Chars = case unicode:characters_to_list(B, utf8) of
                L when is_list(L) -> L;
                _ -> binary_to_list(B)          % not UTF-8: each byte as a code point
            end,
    iolist_to_binary([escape_char(C) || C <- Chars]).

escape_char($") -> <<"\\\"">>;
escape_char($\\) -> <<"\\\\">>;
escape_char(C) when C < 16#20; C > 16#7e, C < 16#10000 -> u_escape(C);
escape_char(C) when C >= 16#10000 ->
    D = C - 16#10000,
    [u_escape(16#d800 + (D bsr 10)), u_escape(16#dc00 + (D band 16#3ff))];
escape_char(C) -> <<C>>.

u_escape(C) ->
    io_lib:format("\\u~4.16.0b", [C]).
