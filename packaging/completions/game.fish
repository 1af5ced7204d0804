# fish completion for game(1)
# Installed as /usr/share/fish/vendor_completions.d/game.fish.
# Kept in sync with `game --help` by tests/integration/test_packaging.py.

# The subcommand path on the command line so far: "", "batch", "identity", "identity export"...
function __game_command
    set -l tokens (commandline -opc)
    set -e tokens[1]
    set -l path
    set -l skip 0
    for token in $tokens
        if test $skip -eq 1
            set skip 0
            continue
        end
        switch $token
            case --server --config --host-key --timeout --from-line --key -o --output --label --uuid
                set skip 1
            case '-*'
            case '*'
                if test (count $path) -eq 0
                    set path $token
                else if contains -- "$path" identity key; and test (count $path) -eq 1
                    set -a path $token
                end
        end
    end
    echo "$path"
end

function __game_is
    test (__game_command) = "$argv"
end

# Server names from the config file ([servers.NAME] tables).
function __game_servers
    set -l config $HOME/.gameconfig
    set -q GAME_CONFIG; and test -n "$GAME_CONFIG"; and set config $GAME_CONFIG
    test -r $config; or return
    string replace -rf '^\s*\[servers\.("?)([^\]"]*)\1\]\s*(#.*)?$' '$2' <$config
end

complete -c game -f

# Options of game itself: before the subcommand.
complete -c game -n '__game_is ""' -s h -l help -d 'Print this help message and exit'
complete -c game -n '__game_is ""' -s V -l version -d 'Print the version (and of libssh, OpenSSL) and exit'
complete -c game -n '__game_is ""' -l server -x -a '(__game_servers)' -d 'Server name from the config, or HOST[:PORT]'
complete -c game -n '__game_is ""' -l config -r -F -d 'Config file (default: $GAME_CONFIG, else ~/.gameconfig)'
complete -c game -n '__game_is ""' -l host-key -x -d 'Require this host key fingerprint (SHA256:...)'
complete -c game -n '__game_is ""' -l timeout -x -d 'Seconds to wait for the server at any step'
complete -c game -n '__game_is ""' -s v -l verbose -d 'Print each step and its duration on stderr'
complete -c game -n '__game_is ""' -s q -l quiet -d 'No progress line, confirmation or hint'
complete -c game -n '__game_is ""' -l dry-run -d 'Print the BER bytes of the requests in hex; send nothing'

# Subcommands.
complete -c game -n '__game_is ""' -a help -d 'Show the help of game, or of a command'
complete -c game -n '__game_is ""' -a setname -d 'Set your player name'
complete -c game -n '__game_is ""' -a score -d 'Add a score (a whole number)'
complete -c game -n '__game_is ""' -a whoami -d 'Show your UUID, key fingerprint, public key and paths'
complete -c game -n '__game_is ""' -a batch -d 'Send commands read line by line from FILE or stdin'
complete -c game -n '__game_is ""' -a init -d 'Create your identity now'
complete -c game -n '__game_is ""' -a trust -d "Show the server's host key fingerprint and pin it"
complete -c game -n '__game_is ""' -a identity -d 'Back up or restore your identity'
complete -c game -n '__game_is ""' -a link -d 'Play from this new device as your account, with its own key'
complete -c game -n '__game_is ""' -a key -d "List, add, remove or rotate your account's keys"

for command in help setname score whoami batch init trust identity 'identity export' 'identity import' \
        link key 'key list' 'key add' 'key remove' 'key rotate'
    complete -c game -n "__game_is $command" -s h -l help -d 'Print this help message and exit'
end

complete -c game -n '__game_is help' -a 'setname score whoami batch init trust identity link key'
complete -c game -n '__game_is whoami' -l json -d 'Print one JSON object'

complete -c game -n '__game_is batch' -F
complete -c game -n '__game_is batch' -l follow -d 'Send stdin lines as they arrive'
complete -c game -n '__game_is batch' -l json -d 'One JSON object per line result, then a summary'
complete -c game -n '__game_is batch' -l from-line -x -d 'Skip the lines before this one (replaces an unfinished submission)'
complete -c game -n '__game_is batch' -l resume -d 'Continue the interrupted submission of FILE'
complete -c game -n '__game_is batch' -l new -d 'Start FILE over, dropping its unfinished submission'

complete -c game -n '__game_is init' -l key -r -F -d 'Adopt this existing private key instead of a new one'

complete -c game -n '__game_is trust' -a '(__game_servers)' -d 'Server'
complete -c game -n '__game_is trust' -s y -l yes -d 'Pin without asking (for scripts)'

complete -c game -n '__game_is identity' -a export -d 'Write the whole identity as one text blob'
complete -c game -n '__game_is identity' -a import -d 'Restore an identity written by identity export'

complete -c game -n '__game_is identity export' -s o -l output -r -F -d 'Write to this new file (mode 0600)'

complete -c game -n '__game_is identity import' -F
complete -c game -n '__game_is identity import' -l force -d 'Replace a different existing identity (kept aside)'

complete -c game -n '__game_is link' -l label -x -d "A name for this device's key"
complete -c game -n '__game_is link' -l uuid -x -d 'The account to join, as game key add printed it'

complete -c game -n '__game_is key' -a list -d "Show the account's keys, labels and fingerprints"
complete -c game -n '__game_is key' -a add -d "Add another device's public key"
complete -c game -n '__game_is key' -a remove -d 'Revoke a key'
complete -c game -n '__game_is key' -a rotate -d "Replace this device's key"
complete -c game -n '__game_is key list' -l json -d 'Print one JSON object'
complete -c game -n '__game_is key add' -l label -x -d 'A name for the key'
complete -c game -n '__game_is key rotate' -l label -x -d 'A name for the new key'
