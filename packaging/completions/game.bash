# bash completion for game(1)                                   -*- shell-script -*-
# Installed as /usr/share/bash-completion/completions/game; or: source this file.
# Kept in sync with `game --help` by tests/integration/test_packaging.py.

# Server names from the config file ([servers.NAME] tables), for --server and `trust`.
_game_servers()
{
    local config=${GAME_CONFIG:-$HOME/.gameconfig} i
    for ((i = 1; i < ${#COMP_WORDS[@]} - 1; i++)); do
        [[ ${COMP_WORDS[i]} == --config ]] && config=${COMP_WORDS[i + 1]}
    done
    [[ -r $config ]] || return 0
    sed -n 's/^[[:space:]]*\[servers\.\("\{0,1\}\)\([^]"]*\)\1\][[:space:]]*\(#.*\)\{0,1\}$/\2/p' "$config" 2>/dev/null
}

# Bash splits words at ':' (it is in COMP_WORDBREAKS), so a server name 127.0.0.1:9022 arrives
# as "127.0.0.1" ":" "9022". Joins those pieces again into line[] / at, as bash-completion's
# _get_comp_words_by_ref -n : does (without needing bash-completion loaded).
_game_join_colons()
{
    line=() at=0
    local i
    for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
        if ((i > 1)) && [[ ${COMP_WORDS[i]} == :* || ${COMP_WORDS[i - 1]} == *: ]]; then
            line[${#line[@]} - 1]+=${COMP_WORDS[i]}
        else
            line+=("${COMP_WORDS[i]}")
        fi
        ((i == COMP_CWORD)) && at=$((${#line[@]} - 1))
    done
}

# COMPREPLY = the server names that start with $cur. Bash replaces only the text after the last
# colon of the word, so each reply loses what $cur holds up to there.
_game_complete_server()
{
    local IFS=$'\n'
    COMPREPLY=($(compgen -W "$(_game_servers)" -- "$cur"))
    if [[ $cur == *:* && $COMP_WORDBREAKS == *:* ]]; then
        local colon_prefix=${cur%"${cur##*:}"} i
        for i in "${!COMPREPLY[@]}"; do
            COMPREPLY[i]=${COMPREPLY[i]#"$colon_prefix"}
        done
    fi
}

_game()
{
    local line at
    _game_join_colons
    local cur=${line[at]} prev=${line[at - 1]}
    local global_opts="-h --help -V --version --server --config --host-key --timeout -v --verbose -q --quiet --dry-run"
    local commands="help setname score whoami batch init trust identity link key"
    local with_value="--server --config --host-key --timeout --from-line --key -o --output --label --uuid"
    COMPREPLY=()

    # The subcommand path so far ("", "batch", "identity", "identity export", ...) and whether
    # a positional argument was given already.
    local path="" positional=0 i word
    for ((i = 1; i < at; i++)); do
        word=${line[i]}
        if [[ " $with_value " == *" $word "* ]]; then
            ((i++))
            continue
        fi
        case $word in
            -*) ;;
            *)
                if [[ -z $path ]]; then
                    path=$word
                elif [[ $path == identity || $path == key ]]; then
                    path="$path $word"
                else
                    positional=1
                fi
                ;;
        esac
    done

    # The value of an option.
    case $prev in
        --server)
            _game_complete_server
            return 0
            ;;
        --config | --key | -o | --output)
            local IFS=$'\n'
            COMPREPLY=($(compgen -f -- "$cur"))
            compopt -o filenames 2>/dev/null
            return 0
            ;;
        --host-key | --timeout | --from-line | --label | --uuid)
            return 0
            ;;
    esac

    local opts words=""
    case $path in
        "") opts=$global_opts words=$commands ;;
        help) opts="-h --help" words=$commands ;;
        setname | score) opts="-h --help" ;;
        whoami) opts="-h --help --json" ;;
        batch) opts="-h --help --follow --json --from-line --resume --new" ;;
        init) opts="-h --help --key" ;;
        trust) opts="-h --help -y --yes" ;;
        identity) opts="-h --help" words="export import" ;;
        "identity export") opts="-h --help -o --output" ;;
        "identity import") opts="-h --help --force" ;;
        link) opts="-h --help --label --uuid" ;;
        key) opts="-h --help" words="list add remove rotate" ;;
        "key list") opts="-h --help --json" ;;
        "key add" | "key rotate") opts="-h --help --label" ;;
        "key remove") opts="-h --help" ;;
        *) return 0 ;;
    esac

    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$opts" -- "$cur"))
        return 0
    fi
    if [[ -n $words ]]; then
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
        return 0
    fi
    if ((positional == 0)); then
        case $path in
            batch | "identity import")
                local IFS=$'\n'
                COMPREPLY=($(compgen -f -- "$cur"))
                compopt -o filenames 2>/dev/null
                ;;
            trust)
                _game_complete_server
                ;;
        esac
    fi
    return 0
}

complete -F _game game
